/*
 * peercred.c: kernel-reported credentials of the peer of a connected
 * Unix-domain socket, for interprocess-converse.
 *
 *   getPeerCred(fd: number) -> { pid?: number, uid: number, gid: number }
 *
 * Throws an Error (with numeric `errno` and `syscall` properties) when the
 * kernel refuses, e.g. EBADF, ENOTSOCK, ENOTCONN, or EAFNOSUPPORT for a socket
 * that is not AF_UNIX. `pid` is left out where the mechanism cannot report it.
 *
 * Only the Linux branch is built and tested in this project. The other
 * branches follow each system's man pages and the Rust `interprocess`
 * crate's peer_creds.rs, but have never been compiled: treat them as
 * UNTESTED until a CI runner for that system exists.
 *
 * Plain C against node_api.h only, so one binary serves every Node version
 * with N-API 8 (Node >= 12.22 / 14.17 / 15.12 / 16).
 */

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif

#if defined(__linux__)
#define _GNU_SOURCE /* struct ucred in <sys/socket.h> */
#endif

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__APPLE__) || defined(__FreeBSD__)
#include <sys/param.h>
#include <sys/ucred.h>
#endif

#include <node_api.h>

#ifndef SOL_LOCAL
#define SOL_LOCAL 0 /* BSDs: LOCAL_* options live at level 0 */
#endif

typedef struct {
  int has_pid;
  pid_t pid;
  uid_t uid;
  gid_t gid;
} peer_cred;

/* Returns 0, or an errno value with *syscall naming the failing call. */
static int read_peer_cred(int fd, peer_cred *out, const char **syscall) {
  /* Only AF_UNIX sockets have peer credentials. Without this check, Linux
   * "succeeds" on a TCP or an unconnected Unix socket with pid 0 and uid/gid
   * -1, and on the BSDs level 0 means IPPROTO_IP on an inet socket, so
   * LOCAL_PEERCRED would read some unrelated IP option. */
  struct sockaddr_storage addr;
  socklen_t alen = sizeof(addr);
  memset(&addr, 0, sizeof(addr));
#if defined(__linux__)
  /* getpeername, not getsockname: it also fails (ENOTCONN) when unconnected.
   * Linux keeps the peer after it has closed, so this still works then. */
  *syscall = "getpeername";
  if (getpeername(fd, (struct sockaddr *)&addr, &alen) != 0) return errno;
#else
  *syscall = "getsockname";
  if (getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) return errno;
#endif
  if (addr.ss_family != AF_UNIX) return EAFNOSUPPORT;

  memset(out, 0, sizeof(*out));

#if defined(__linux__)
  /* Tested. Credentials captured by the kernel at connect()/socketpair(). */
  struct ucred cred;
  socklen_t len = sizeof(cred);
  *syscall = "getsockopt(SO_PEERCRED)";
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return errno;
  if (len != sizeof(cred)) return EINVAL;
  /* pid 0: the peer is in a pid namespace we cannot see into. */
  out->has_pid = cred.pid > 0;
  out->pid = cred.pid;
  out->uid = cred.uid;
  out->gid = cred.gid;

#elif defined(__APPLE__)
  /* UNTESTED. xucred has uid and groups (cr_groups[0] is the effective gid);
   * the pid needs a second option. */
  struct xucred xu;
  socklen_t len = sizeof(xu);
  *syscall = "getsockopt(LOCAL_PEERCRED)";
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &xu, &len) != 0) return errno;
  if (len < (socklen_t)offsetof(struct xucred, cr_groups) + sizeof(gid_t) ||
      xu.cr_version != XUCRED_VERSION || xu.cr_ngroups < 1)
    return EINVAL;
  out->uid = xu.cr_uid;
  out->gid = xu.cr_groups[0];
#ifdef LOCAL_PEERPID
  pid_t pid = 0;
  socklen_t plen = sizeof(pid);
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &plen) == 0 &&
      plen == sizeof(pid) && pid > 0) {
    out->has_pid = 1;
    out->pid = pid;
  }
#endif

#elif defined(__FreeBSD__)
  /* UNTESTED. Same xucred as macOS; FreeBSD 13 added cr_pid to it. */
  struct xucred xu;
  socklen_t len = sizeof(xu);
  *syscall = "getsockopt(LOCAL_PEERCRED)";
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &xu, &len) != 0) return errno;
  if (len < (socklen_t)offsetof(struct xucred, cr_groups) + sizeof(gid_t) ||
      xu.cr_version != XUCRED_VERSION || xu.cr_ngroups < 1)
    return EINVAL;
  out->uid = xu.cr_uid;
  out->gid = xu.cr_groups[0];
#if __FreeBSD_version >= 1300139 /* 13.0-RELEASE */
  if (len == sizeof(xu) && xu.cr_pid > 0) {
    out->has_pid = 1;
    out->pid = xu.cr_pid;
  }
#endif

#elif defined(__OpenBSD__)
  /* UNTESTED. */
  struct sockpeercred cred;
  socklen_t len = sizeof(cred);
  *syscall = "getsockopt(SO_PEERCRED)";
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return errno;
  if (len != sizeof(cred)) return EINVAL;
  out->has_pid = cred.pid > 0;
  out->pid = cred.pid;
  out->uid = cred.uid;
  out->gid = cred.gid;

#elif defined(__NetBSD__)
  /* UNTESTED. */
  struct unpcbid cred;
  socklen_t len = sizeof(cred);
  *syscall = "getsockopt(LOCAL_PEEREID)";
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEEREID, &cred, &len) != 0) return errno;
  if (len != sizeof(cred)) return EINVAL;
  out->has_pid = cred.unp_pid > 0;
  out->pid = cred.unp_pid;
  out->uid = cred.unp_euid;
  out->gid = cred.unp_egid;

#else
  /* UNTESTED. DragonFly, Solaris/illumos (libc), AIX...: uid/gid, no pid. */
  *syscall = "getpeereid";
  if (getpeereid(fd, &out->uid, &out->gid) != 0) return errno;
#endif

  return 0;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[256];
  napi_value js_msg, js_err, js_errno, js_syscall;
  snprintf(msg, sizeof(msg), "%s: %s", syscall, strerror(err));
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg) != napi_ok ||
      napi_create_error(env, NULL, js_msg, &js_err) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  if (napi_create_int32(env, err, &js_errno) == napi_ok)
    napi_set_named_property(env, js_err, "errno", js_errno);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall) == napi_ok)
    napi_set_named_property(env, js_err, "syscall", js_syscall);
  napi_throw(env, js_err);
  return NULL;
}

/* uid_t/gid_t are unsigned 32-bit; pid_t is a positive int here. */
static int set_u32(napi_env env, napi_value obj, const char *key, uint32_t v) {
  napi_value js;
  return napi_create_uint32(env, v, &js) == napi_ok &&
         napi_set_named_property(env, obj, key, js) == napi_ok;
}

static napi_value get_peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_valuetype type;
  int32_t fd;
  peer_cred cred;
  const char *syscall = "getPeerCred";

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "getPeerCred: fd must be a non-negative integer");
    return NULL;
  }

  int err = read_peer_cred(fd, &cred, &syscall);
  if (err != 0) return throw_errno(env, err, syscall);

  if (napi_create_object(env, &result) != napi_ok) return NULL;
  if ((cred.has_pid && !set_u32(env, result, "pid", (uint32_t)cred.pid)) ||
      !set_u32(env, result, "uid", (uint32_t)cred.uid) ||
      !set_u32(env, result, "gid", (uint32_t)cred.gid))
    return NULL; /* a pending exception, if any, propagates */
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "getPeerCred", NAPI_AUTO_LENGTH, get_peer_cred, NULL, &fn) !=
          napi_ok ||
      napi_set_named_property(env, exports, "getPeerCred", fn) != napi_ok)
    return NULL;
  return exports;
}
