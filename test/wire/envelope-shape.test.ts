import { describe, expect, it } from 'vitest';
import { envelopeVectors } from '../../src/conformance/vectors.js';
import { decodeBody, encodeFrame } from '../../src/wire/codec.js';
import { envelopeProblem } from '../../src/wire/envelope-shape.js';

/* docs/PROTOCOL.md §6: exact element counts, integers that are MessagePack integers, CREDIT ranges. */

const check = (hex: string): string | undefined => {
  const body = Buffer.from(hex, 'hex');
  const alone = envelopeProblem(body, decodeBody(body));
  // The same body as a range of a read chunk, as the connection decodes frames in place, between
  // bytes that would mislead a reader starting at the wrong place (a float 32, then 0xc1): the same verdict.
  const chunk = Buffer.concat([Buffer.from('ca40a00000', 'hex'), body, Buffer.from('c1c1', 'hex')]);
  expect(envelopeProblem(chunk, decodeBody(chunk, 5, 5 + body.length), false, 5)).toBe(alone);
  return alone;
};
const bodyOf = (envelope: unknown[]): string => {
  const frame = encodeFrame(envelope, false, 2 ** 32 - 1);
  return frame.subarray(frame[0]! < 0xfc ? 1 : 3).toString('hex');
};

describe('envelopeProblem', () => {
  // (The event's own shape, §6.1, is checked where events are dispatched; the kit's S30 covers it.)
  it.each(envelopeVectors().filter((v) => v.section !== '6.1').map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    if (vector.error) expect(check(vector.hex)).toBeTypeOf('string');
    else expect(check(vector.hex)).toBeUndefined();
  });

  it('a TELL with a third element (trace context, §6.9) only on a connection where this side said it reads it', () => {
    const tell = Buffer.from(bodyOf([0, { type: 'x' }, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }]), 'hex');
    expect(envelopeProblem(tell, decodeBody(tell))).toMatch(/kind 0 has 2 elements, this one has 3/);
    expect(envelopeProblem(tell, decodeBody(tell), true)).toBeUndefined();
    const four = Buffer.from(bodyOf([0, { type: 'x' }, {}, {}]), 'hex');
    expect(envelopeProblem(four, decodeBody(four), true)).toMatch(/kind 0 has 2 or 3 elements, this one has 4/);
    const ask = Buffer.from(bodyOf([1, 0, { type: 'x' }, {}, {}]), 'hex');
    expect(envelopeProblem(ask, decodeBody(ask), true)).toMatch(/kind 1 has 3 or 4 elements/);
  });

  it('accepts every int format for kind, id and CREDIT count, and array 16/32 headers', () => {
    expect(check('dc0003' + 'cc01' + 'cf0000000000000005' + '81a474797065a178')).toBeUndefined(); // ASK, uint 8 kind, uint 64 id
    expect(check('dd00000003' + 'd00a' + 'd10007' + 'ce00000010')).toBeUndefined(); // CREDIT, int 8 kind, int 16 id, uint 32 n
    expect(check(bodyOf([1, 4294967295, { type: 'x' }, { stream: 16 }]))).toBeUndefined();
  });

  it('refuses a float in place of the kind, the id or the CREDIT count, even when its value is an integer', () => {
    expect(check('91' + 'ca40a00000')).toMatch(/kind must be a MessagePack integer/); // [5.0 (float 32)]
    expect(check('92' + '04' + 'cb401c000000000000')).toMatch(/id that is an integer/); // CANCEL 7.0
    expect(check('93' + '0a' + '01' + 'cb4000000000000000')).toMatch(/CREDIT's count/); // CREDIT 2.0
  });

  it('refuses ids and counts out of range', () => {
    expect(check(bodyOf([4, 2 ** 32]))).toMatch(/id/);
    expect(check(bodyOf([10, 1, 2 ** 32]))).toMatch(/CREDIT/);
    expect(check(bodyOf([10, 1, 0]))).toMatch(/CREDIT/);
    expect(check(bodyOf([2, -1, null]))).toMatch(/id/);
  });
});
