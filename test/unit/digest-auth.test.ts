// HTTP digest authentication (gateway/src/camera/digest.ts) against the RFCs' own worked examples, and the
// challenge parser against what cameras send.
import { test } from "node:test";
import assert from "node:assert/strict";
import { digestAuthorization, parseChallenges, pickDigest } from "../../gateway/src/camera/digest.js";

// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
const RFC7616 = {
  realm: "http-auth@example.org",
  nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
  opaque: "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
  cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
};
const header7616 = `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=SHA-256, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`;
const md5Header7616 = `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=MD5, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`;

test("RFC 7616 §3.9.1: SHA-256 and MD5 responses", () => {
  const input = { username: "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html", nc: 1, cnonce: RFC7616.cnonce };
  const [sha] = parseChallenges([header7616]);
  const [md5] = parseChallenges([md5Header7616]);
  assert.equal(digestAuthorization(sha!, input).response, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
  assert.equal(digestAuthorization(md5!, input).response, "8ca523f5e9506fed4657c9700eebdbec");
  const h = digestAuthorization(sha!, input).header;
  assert.match(h, /^Digest username="Mufasa", realm="http-auth@example.org", uri="\/dir\/index.html", algorithm=SHA-256, nonce="7ypf/);
  assert.match(h, /nc=00000001, cnonce="f2\/wE4q74E6zIJEtWaHKaf5wv\/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa/);
  assert.match(h, /opaque="FQhe\/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"$/);
});

test("RFC 2617 §3.5: MD5 with qop=auth (algorithm absent means MD5)", () => {
  const [c] = parseChallenges(['Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"']);
  const r = digestAuthorization(c!, { username: "Mufasa", password: "Circle Of Life", method: "GET", uri: "/dir/index.html", nc: 1, cnonce: "0a4f113b" });
  assert.equal(r.response, "6629fae49393a05397450978507c4ef1");
  assert.match(r.header, /algorithm=MD5/);
});

test("RFC 2069 form (no qop): response = H(HA1:nonce:HA2), no nc or cnonce sent", () => {
  const [c] = parseChallenges(['Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"']);
  const r = digestAuthorization(c!, { username: "Mufasa", password: "CircleOfLife", method: "GET", uri: "/dir/index.html", nc: 1 });
  // RFC 2069 §2.4's example.
  assert.equal(r.response, "1949323746fe6a43ef61f9606e7febea");
  assert.doesNotMatch(r.header, /nc=|cnonce=|qop=/);
});

test("-sess: HA1 = H(H(user:realm:pass):nonce:cnonce)", async () => {
  const { createHash } = await import("node:crypto");
  const H = (s: string) => createHash("sha256").update(s).digest("hex");
  const [c] = parseChallenges(['Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256-sess']);
  const r = digestAuthorization(c!, { username: "u", password: "p", method: "GET", uri: "/s", nc: 2, cnonce: "c" });
  const ha1 = H(`${H("u:r:p")}:n:c`);
  assert.equal(r.response, H(`${ha1}:n:00000002:c:auth:${H("GET:/s")}`));
});

test("challenges: several per header and per value, quoted commas and escapes, SHA-256 preferred", () => {
  const cs = parseChallenges(['Basic realm="cam, front", Digest realm="a \\"b\\"", nonce="x,y", qop=auth, algorithm=MD5', 'Digest realm="a", nonce="z", qop="auth", algorithm=SHA-256']);
  assert.deepEqual(cs.map((c) => c.scheme), ["Basic", "Digest", "Digest"]);
  assert.equal(cs[0]!.params.realm, "cam, front");
  assert.equal(cs[1]!.params.realm, 'a "b"');
  assert.equal(cs[1]!.params.nonce, "x,y");
  assert.equal(pickDigest(cs)?.params.algorithm, "SHA-256");
  // auth-int only, or an algorithm we do not know: not answerable.
  assert.equal(pickDigest(parseChallenges(['Digest realm="a", nonce="n", qop="auth-int"'])), undefined);
  assert.equal(pickDigest(parseChallenges(['Digest realm="a", nonce="n", algorithm=SHA-512-256'])), undefined);
  assert.equal(pickDigest(parseChallenges(['Basic realm="a"'])), undefined);
  assert.deepEqual(parseChallenges(["garbage=1"]), []);
});
