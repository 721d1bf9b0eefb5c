{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-Wall", "-Wextra", "-fvisibility=hidden"],
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "conditions": [
        ["OS=='win'", { "type": "none", "sources!": ["peercred.c"] }]
      ]
    }
  ]
}
