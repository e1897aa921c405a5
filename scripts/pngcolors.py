"""Checks that a screenshot shows colours only a rendered page draws.

usage: pngcolors.py FILE.png MIN_PIXELS '#rrggbb' ['#rrggbb' ...]
Exits 0 when every colour covers at least MIN_PIXELS pixels (within 6 per channel), 1 otherwise.
A decoder of its own (8-bit RGB/RGBA, not interlaced: what Chromium writes), so the tests need no
imaging package.
"""
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    width, height, depth, ctype, _, _, interlace = header
    assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 4 if ctype == 6 else 3
    raw, stride, prev, out = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                row[i] = (row[i] + a) & 255
            elif f == 2:
                row[i] = (row[i] + b) & 255
            elif f == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(row)
        prev = row
    return width, height, bpp, out


def main():
    path, least, colours = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    w, h, bpp, rows = pixels(path)
    ok = True
    for hexcol in colours:
        rgb = tuple(int(hexcol.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
        n = sum(1 for row in rows for x in range(0, w * bpp, bpp)
                if all(abs(row[x + k] - rgb[k]) <= 6 for k in range(3)))
        print(f"{path} {w}x{h}: {n} pixels of {hexcol}")
        ok = ok and n >= least
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
