"""Test data for the CLI scripts: NumPy .npy bytes and a small learnable image set, without NumPy
(the test machine need not have it). Scripts import it with sys.path set to tests/cli."""
import random
import struct
import zipfile


def npy(descr, shape, payload):
    """A version-1.0 .npy file: header padded to a multiple of 64 bytes, then the raw payload."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload


def brightness_split(n, rng):
    """n gray 28x28 uint8 images whose mean brightness encodes the label i % 10 (learnable in a
    few steps), and their labels."""
    labels = [i % 10 for i in range(n)]
    px = bytes(min(255, max(0, 20 * y + rng.randrange(-20, 60))) for y in labels for _ in range(784))
    return px, bytes(labels)


def write_brightness_npz(path, seed, ntrain=96, ntest=32):
    """x_train, y_train, x_test, y_test of brightness_split in an uncompressed .npz; returns the
    generator (to draw more data after it) and the test images and labels."""
    rng = random.Random(seed)
    xtr, ytr = brightness_split(ntrain, rng)
    xte, yte = brightness_split(ntest, rng)
    with zipfile.ZipFile(path, "w") as z:
        for name, shape, data in (("x_train", (ntrain, 28, 28), xtr), ("y_train", (ntrain,), ytr),
                                  ("x_test", (ntest, 28, 28), xte), ("y_test", (ntest,), yte)):
            z.writestr(name + ".npy", npy("|u1", shape, data))
    return rng, xte, yte
