"""rlhf.c signatures are standard Ed25519ph (RFC 8032 section 5.1, empty
context): an independent verifier written here from the RFC's equations in
plain Python (no libsodium) accepts files signed by `rlhf file sign` and
rejects modified ones. So anyone can check an rlhf.c signature with another
RFC 8032 implementation, given the message layout in docs/formats-secure.md."""
import hashlib, os, subprocess, sys, tempfile

BUILD = os.environ.get("RLHF_BUILD", "build")
RLHF = os.path.join(BUILD, "rlhf")
MK = os.path.join(BUILD, "tools", "mkbinfile")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


# Edwards25519: -x^2 + y^2 = 1 + d x^2 y^2 over GF(p), affine arithmetic.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def inv(x):
    return pow(x, P - 2, P)


def add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * inv(1 + t) % P, (y1 * y2 + x1 * x2) * inv(1 - t) % P)


def mul(k, pt):
    acc, q = (0, 1), pt
    while k:
        if k & 1:
            acc = add(acc, q)
        q = add(q, q)
        k >>= 1
    return acc


def decode(b):
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= P:
        return None
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y)


BY = 4 * inv(5) % P
BASE = decode(BY.to_bytes(32, "little"))


def verify_ed25519ph(pub, msg, sig):
    A, R = decode(pub), decode(sig[:32])
    S = int.from_bytes(sig[32:], "little")
    if A is None or R is None or S >= L:
        return False
    dom2 = b"SigEd25519 no Ed25519 collisions" + bytes([1, 0])   # phflag 1, empty context
    ph = hashlib.sha512(msg).digest()
    k = int.from_bytes(hashlib.sha512(dom2 + sig[:32] + pub + ph).digest(), "little") % L
    return mul(S, BASE) == add(R, mul(k, A))


def read_pub(path):
    lines = [l for l in open(path).read().splitlines()[1:] if l and not l.startswith("#")]
    return bytes.fromhex(lines[0])


def message_and_sig(img):
    payload_bytes = int.from_bytes(img[16:24], "little")
    trailer = img[64 + payload_bytes:]
    assert trailer[:8] == b"RLHFSIG1" and len(trailer) == 128
    msg = b"rlhf.c signature v1\0" + img[64:64 + payload_bytes] + img[:64] + trailer[:56]
    return msg, trailer[56:120], trailer[24:56]


tmp = tempfile.mkdtemp(prefix="rlhf_ed25519ph_")
try:
    run = lambda *a: subprocess.run(a, capture_output=True, text=True)
    r = run(RLHF, "keys", "generate", "--out", tmp + "/k")
    check(r.returncode == 0, "keys generate: " + r.stderr)
    pub = read_pub(tmp + "/k/sign.pub")
    check(decode(pub) is not None, "public key decodes to a curve point")
    for n in (0, 1, 1000):
        f = f"{tmp}/f{n}.bin"
        run(MK, f, str(n), "7")
        r = run(RLHF, "file", "sign", "--in", f, "--key", tmp + "/k/sign.key")
        check(r.returncode == 0, "file sign: " + r.stderr)
        img = open(f, "rb").read()
        msg, sig, signer = message_and_sig(img)
        check(signer == pub, "trailer names the signing key")
        check(verify_ed25519ph(pub, msg, sig), f"independent Ed25519ph verifier accepts a {n}-byte payload")
        # a modified payload byte, header byte, or signature byte is rejected by it too
        if n:
            bad = bytearray(img); bad[64] ^= 1
            m2, s2, _ = message_and_sig(bytes(bad))
            check(not verify_ed25519ph(pub, m2, s2), "rejects a modified payload")
        bad = bytearray(img); bad[28] ^= 1
        m2, s2, _ = message_and_sig(bytes(bad))
        check(not verify_ed25519ph(pub, m2, s2), "rejects a modified header")
        check(not verify_ed25519ph(pub, msg, sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]), "rejects a modified signature")
finally:
    subprocess.run(["rm", "-rf", tmp])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
