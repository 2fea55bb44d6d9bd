"""Compiled per-pixel loops of the simulator (numba): rasterising primitives into z-buffered colour,
class and depth buffers, and the target domain's image effects.

Plain numpy would spend most of its time in per-object call overhead (~100 objects a scene); these
loops render a 128×384 scene in about a millisecond. Noise comes from a counter-based hash of
(seed, row, column, stream), so a sample is identical on every machine and independent of call order.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

NEAR = 0.5
BOX, SPHERE, PLATE = 0, 1, 2
# Primitive table columns: kind, class, geometry g0..g5, colour r g b, pattern, params p0..p2.
# box: x0 x1 y0 y1 z0 z1; sphere: x y z r; plate: x y z w h shape.
NO_PATTERN, WINDOWS, GLASS, REAR, LAMPS = range(5)
CIRCLE, RECT, DIAMOND, TRIANGLE = range(4)
_SOFT_LIGHT = np.array([0.3, 0.8, -0.5]) / np.linalg.norm([0.3, 0.8, -0.5])


@njit(cache=True, nogil=True)
def _bbox(xs, ys, zs, f, cx, cy, cam_h, width, height):
    """Pixel bounds (v0, v1, u0, u1) of the projections of points (xs, ys, zs)."""
    umin, umax, vmin, vmax = 1e30, -1e30, 1e30, -1e30
    for i in range(xs.shape[0]):
        z = max(zs[i], NEAR)
        u = cx + f * xs[i] / z
        v = cy - f * (ys[i] - cam_h) / z
        umin, umax, vmin, vmax = min(umin, u), max(umax, u), min(vmin, v), max(vmax, v)
    return (max(int(math.floor(vmin)), 0), min(int(math.ceil(vmax)) + 1, height),
            max(int(math.floor(umin)), 0), min(int(math.ceil(umax)) + 1, width))


@njit(cache=True, nogil=True)
def rasterise(prims, xn, yn, f, cx, cy, cam_h, depth, labels, color, face_shade, sun, lighting, pattern_rgb, lamps):
    """Draw every primitive (rows of ``prims``: boxes, spheres and plates) nearer than the z-buffer
    ``depth`` (H×W) into it, ``labels`` (H×W) and ``color`` (H×W×3).

    xn (W,): X/Z per column; yn (H,): (cam_h - Y)/Z per row; face_shade (5,): front, -X, +X, top, bottom;
    pattern_rgb (3, 3): window, glass and tail-light colours; lamps (3, 3): red, amber, green.
    """
    xs, ys, zs = np.empty(8), np.empty(8), np.empty(8)     # corners of the primitive drawn, reused
    for i in range(prims.shape[0]):
        p = prims[i]
        kind = int(p[0])
        if kind == BOX:
            _box(p, xn, yn, f, cx, cy, cam_h, depth, labels, color, face_shade, pattern_rgb, lamps, xs, ys, zs)
        elif kind == SPHERE:
            _sphere(p, xn, yn, f, cx, cy, cam_h, depth, labels, color, sun, lighting, xs, ys, zs)
        else:
            _plate(p, xn, yn, f, cx, cy, cam_h, depth, labels, color, face_shade, xs, ys, zs)


@njit(cache=True, nogil=True)
def _box(p, xn, yn, f, cx, cy, cam_h, depth, labels, color, face_shade, pattern_rgb, lamps, xs, ys, zs):
    """An axis-aligned box (buildings, vehicles, poles, lights): its nearest face per pixel, with its pattern."""
    height, width = depth.shape
    cls = np.uint8(p[1])
    x0, x1, y0, y1, z0, z1 = p[2], p[3], p[4], p[5], p[6], p[7]
    if z1 <= NEAR:
        return
    for k in range(8):
        xs[k] = x0 if k & 1 == 0 else x1
        ys[k] = y0 if k & 2 == 0 else y1
        zs[k] = max(z0, NEAR) if k & 4 == 0 else z1
    v0, v1, u0, u1 = _bbox(xs, ys, zs, f, cx, cy, cam_h, width, height)
    pattern = int(p[11])
    for v in range(v0, v1):
        b = yn[v]
        for u in range(u0, u1):
            a = xn[u]
            best, face, lu, ly = np.inf, -1, 0.0, 0.0
            if z0 >= NEAR:  # the face towards the camera
                x, y = a * z0, cam_h - b * z0
                if x0 <= x <= x1 and y0 <= y <= y1:
                    best, face, lu, ly = z0, 0, x - x0, y
            if x0 > 0 and a > 0:  # left face (normal -X) of an object to the right
                z = x0 / a
                y = cam_h - b * z
                if z0 <= z <= z1 and y0 <= y <= y1 and z < best:
                    best, face, lu, ly = z, 1, z - z0, y
            if x1 < 0 and a < 0:  # right face (normal +X) of an object to the left
                z = x1 / a
                y = cam_h - b * z
                if z0 <= z <= z1 and y0 <= y <= y1 and z < best:
                    best, face, lu, ly = z, 2, z - z0, y
            if y1 < cam_h and b > 0:  # top, seen from above
                z = (cam_h - y1) / b
                x = a * z
                if z0 <= z <= z1 and x0 <= x <= x1 and z < best:
                    best, face, lu, ly = z, 3, x - x0, y1
            if y0 > cam_h and b < 0:  # bottom, seen from below
                z = (cam_h - y0) / b
                x = a * z
                if z0 <= z <= z1 and x0 <= x <= x1 and z < best:
                    best, face, lu, ly = z, 4, x - x0, y0
            if face < 0 or best < NEAR or best >= depth[v, u]:
                continue
            r, g, bl = p[8], p[9], p[10]
            if pattern == WINDOWS and face <= 2:
                fu, fv = (lu % p[12]) / p[12], (ly % p[13]) / p[13]
                if 0.3 < fu < 0.3 + p[14] and 0.35 < fv < 0.8 and 1.5 < ly < y1 - 0.8:
                    r, g, bl = pattern_rgb[0, 0], pattern_rgb[0, 1], pattern_rgb[0, 2]
            elif pattern == GLASS and face != 3:
                r, g, bl = pattern_rgb[1, 0], pattern_rgb[1, 1], pattern_rgb[1, 2]
            elif pattern == REAR and face == 0 and 0.6 < ly < 0.82 and (lu < 0.28 or lu > x1 - x0 - 0.28):
                r, g, bl = pattern_rgb[2, 0], pattern_rgb[2, 1], pattern_rgb[2, 2]
            elif pattern == LAMPS and face == 0:
                dx = lu + x0 - (x0 + x1) / 2
                for k in range(3):
                    dy = ly - (y1 - 0.2 - 0.3 * k)
                    if dx * dx + dy * dy < 0.11 ** 2:
                        dim = 1.0 if k == int(p[12]) else 0.25
                        r, g, bl = lamps[k, 0] * dim, lamps[k, 1] * dim, lamps[k, 2] * dim
            s = face_shade[face]
            depth[v, u], labels[v, u] = best, cls
            color[v, u, 0], color[v, u, 1], color[v, u, 2] = r * s, g * s, bl * s


@njit(cache=True, nogil=True)
def _sphere(p, xn, yn, f, cx, cy, cam_h, depth, labels, color, sun, lighting, xs, ys, zs):
    """A sphere (vegetation: a crown, a bush), shaded between a soft light and the sun by ``lighting``."""
    height, width = depth.shape
    cls = np.uint8(p[1])
    soft = _SOFT_LIGHT
    sx, sy, sz, rad = p[2], p[3], p[4], p[5]
    if sz + rad <= NEAR:
        return
    for k in range(4):
        xs[k] = sx - rad if k & 1 == 0 else sx + rad
        ys[k] = sy - rad if k & 2 == 0 else sy + rad
        zs[k] = sz - rad
    v0, v1, u0, u1 = _bbox(xs[:4], ys[:4], zs[:4], f, cx, cy, cam_h, width, height)
    dy = sy - cam_h
    cc = sx * sx + dy * dy + sz * sz - rad * rad
    for v in range(v0, v1):
        b = yn[v]
        for u in range(u0, u1):
            a = xn[u]
            # Ray (a t, cam_h - b t, t): the near root t of |ray - centre|² = r² is the depth.
            qa = a * a + b * b + 1
            bh = a * sx - b * dy + sz
            disc = bh * bh - qa * cc
            if disc <= 0:
                continue
            z = (bh - math.sqrt(disc)) / qa
            if z < NEAR or z >= depth[v, u]:
                continue
            nx, ny, nz = (a * z - sx) / rad, (cam_h - b * z - sy) / rad, (z - sz) / rad
            flat = 0.78 + 0.3 * (nx * soft[0] + ny * soft[1] + nz * soft[2])
            lit = 0.5 + 0.7 * max(nx * sun[0] + ny * sun[1] + nz * sun[2], 0.0)
            s = flat + lighting * (lit - flat)
            depth[v, u], labels[v, u] = z, cls
            color[v, u, 0], color[v, u, 1], color[v, u, 2] = p[8] * s, p[9] * s, p[10] * s


@njit(cache=True, nogil=True)
def _plate(p, xn, yn, f, cx, cy, cam_h, depth, labels, color, face_shade, xs, ys, zs):
    """A plate facing the camera (a traffic sign: circle, rectangle with a white border, diamond, triangle)."""
    height, width = depth.shape
    cls = np.uint8(p[1])
    px, py, pz, w, h, shape = p[2], p[3], p[4], p[5], p[6], int(p[7])
    if pz <= NEAR:
        return
    for k in range(4):
        xs[k] = px - w / 2 if k & 1 == 0 else px + w / 2
        ys[k] = py - h / 2 if k & 2 == 0 else py + h / 2
        zs[k] = pz
    v0, v1, u0, u1 = _bbox(xs[:4], ys[:4], zs[:4], f, cx, cy, cam_h, width, height)
    s = face_shade[0]
    for v in range(v0, v1):
        pv = (cam_h - yn[v] * pz - py) / h
        for u in range(u0, u1):
            pu = (xn[u] * pz - px) / w
            if shape == CIRCLE:
                inside = pu * pu + pv * pv <= 0.25
            elif shape == RECT:
                inside = abs(pu) <= 0.5 and abs(pv) <= 0.5
            elif shape == DIAMOND:
                inside = abs(pu) + abs(pv) <= 0.5
            else:
                inside = pv >= -0.5 and abs(pu) <= 0.5 * (0.5 - pv)
            if not inside or pz >= depth[v, u]:
                continue
            depth[v, u], labels[v, u] = pz, cls
            if shape == RECT and max(abs(pu), abs(pv)) > 0.4:  # a white border
                color[v, u, 0], color[v, u, 1], color[v, u, 2] = 240.0 * s, 240.0 * s, 240.0 * s
            else:
                color[v, u, 0], color[v, u, 1], color[v, u, 2] = p[8] * s, p[9] * s, p[10] * s


@njit(cache=True, nogil=True)
def ground_and_sky(xn, yn, cam_h, far, road_x, lanes, colors, shadows, shadow_factor, road_cls, terrain_cls, sky_cls,
                   depth, labels, color):
    """Fill every pixel with road (markings included), terrain or sky.

    road_x (2,): the road's X extent; lanes (L,): X of dashed lane lines; colors (5, 3): road, marking,
    terrain, sky at the top, sky at the horizon; shadows (S, 4): ground rectangles x0 x1 z0 z1 in shade.
    """
    height, width = depth.shape
    near = np.empty(shadows.shape[0], np.int64)
    for v in range(height):
        b = yn[v]
        if b <= 1e-6:
            t = min(max(-b / 0.35, 0.0), 1.0)
            for u in range(width):
                depth[v, u], labels[v, u] = far, sky_cls
                for c in range(3):
                    color[v, u, c] = colors[4, c] + t * (colors[3, c] - colors[4, c])
            continue
        z = cam_h / b
        dash = z < 1e6 and z % 9.0 < 3.0
        n_near = 0
        for j in range(shadows.shape[0]):  # shadow rectangles crossing this row's ground distance
            if shadows[j, 2] <= z <= shadows[j, 3]:
                near[n_near] = j
                n_near += 1
        for u in range(width):
            x = xn[u] * z
            k = 2
            labels[v, u] = terrain_cls
            if road_x[0] <= x <= road_x[1]:
                labels[v, u] = road_cls
                k = 0
                if abs(x - road_x[0] - 0.3) < 0.08 or abs(x - road_x[1] + 0.3) < 0.08:
                    k = 1
                elif dash:
                    for j in range(lanes.shape[0]):
                        if abs(x - lanes[j]) < 0.07:
                            k = 1
            s = 1.0
            for q in range(n_near):
                if shadows[near[q], 0] <= x <= shadows[near[q], 1]:
                    s = shadow_factor
                    break
            depth[v, u] = min(z, far)
            for c in range(3):
                color[v, u, c] = colors[k, c] * s


@njit(cache=True, nogil=True, inline="always")
def _hash(seed, a, b, stream):
    """Four integers -> 64 well-mixed bits (splitmix64 finaliser)."""
    x = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    x ^= (np.uint64(a) + np.uint64(0x632BE59BD9B4E019)) * np.uint64(0xBF58476D1CE4E5B9)
    x ^= (np.uint64(b) + np.uint64(0x85157AF5)) * np.uint64(0x94D049BB133111EB)
    x ^= np.uint64(stream) * np.uint64(0xD6E8FEB86659FD93)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@njit(cache=True, nogil=True, inline="always")
def _uniform3(seed, a, b, stream):
    """Three independent zero-mean, unit-variance uniform numbers from one hash (16-bit quarters)."""
    x = _hash(seed, a, b, stream)
    m, k = np.uint64(0xFFFF), 2 * 1.7320508075688772 / 65536.0
    return (float(x & m) * k - 1.7320508075688772, float((x >> np.uint64(16)) & m) * k - 1.7320508075688772,
            float((x >> np.uint64(32)) & m) * k - 1.7320508075688772)


@njit(cache=True, nogil=True, inline="always")
def _normal(seed, a, b, stream):
    """Approximately standard normal: the sum of the hash's four 16-bit quarters, rescaled."""
    x = _hash(seed, a, b, stream)
    m = np.uint64(0xFFFF)
    s = float(x & m) + float((x >> np.uint64(16)) & m) + float((x >> np.uint64(32)) & m) + float(x >> np.uint64(48))
    return (s / 65536.0 - 2.0) * 1.7320508075688772


@njit(cache=True, nogil=True)
def surface_and_atmosphere(color, labels, depth, seed, texture, texture_amp, haze, haze_rgb, haze_distance,
                           grade_level, grade):
    """In place on H×W×3 colour (0..255): texture (luminance noise at 1 and 6 px scales, by class),
    haze growing with depth, and colour grading (grade: gains r g b, saturation, contrast, gamma)."""
    height, width = depth.shape
    cell = 6
    coarse = np.empty((height // cell + 2, width // cell + 2))
    for i in range(coarse.shape[0]):
        for j in range(coarse.shape[1]):
            coarse[i, j] = _normal(seed, i, j, 1)
    gains = (1 + grade_level * (grade[0] - 1), 1 + grade_level * (grade[1] - 1), 1 + grade_level * (grade[2] - 1))
    sat, con = 1 + grade_level * (grade[3] - 1), 1 + grade_level * (grade[4] - 1)
    lut = 255 * (np.arange(1025) / 1024.0) ** (1 + grade_level * (grade[5] - 1))  # gamma, by table
    haze_lut = np.exp(-np.arange(4097) / 4096 * 100.0 * haze / haze_distance)  # transmittance, 0..100 m
    for v in range(height):
        cv, fv = v // cell, (v % cell) / cell
        for u in range(width):
            r, g, b = color[v, u, 0], color[v, u, 1], color[v, u, 2]
            if texture > 0:
                cu, fu = u // cell, (u % cell) / cell
                n = ((coarse[cv, cu] * (1 - fu) + coarse[cv, cu + 1] * fu) * (1 - fv)
                     + (coarse[cv + 1, cu] * (1 - fu) + coarse[cv + 1, cu + 1] * fu) * fv)
                gain = max(1 + texture * texture_amp[labels[v, u]] * (0.5 * _uniform3(seed, v, u, 2)[0] + 0.9 * n), 0.2)
                r, g, b = r * gain, g * gain, b * gain
            if haze > 0:
                t = haze_lut[int(min(depth[v, u], 100.0) * 40.96)]
                r, g, b = r * t + haze_rgb[0] * (1 - t), g * t + haze_rgb[1] * (1 - t), b * t + haze_rgb[2] * (1 - t)
            if grade_level > 0:
                r, g, b = r / 255 * gains[0], g / 255 * gains[1], b / 255 * gains[2]
                lum = 0.299 * r + 0.587 * g + 0.114 * b
                r, g, b = lum + sat * (r - lum), lum + sat * (g - lum), lum + sat * (b - lum)
                r = lut[int(min(max(0.5 + con * (r - 0.5), 0.0), 1.0) * 1024 + 0.5)]
                g = lut[int(min(max(0.5 + con * (g - 0.5), 0.0), 1.0) * 1024 + 0.5)]
                b = lut[int(min(max(0.5 + con * (b - 0.5), 0.0), 1.0) * 1024 + 0.5)]
            color[v, u, 0], color[v, u, 1], color[v, u, 2] = r, g, b


@njit(cache=True, nogil=True)
def _blur_rows(src, k, out):
    """Convolve each row of H×W×3 `src` with the odd kernel `k` (edges replicated) into `out`."""
    rad = len(k) // 2
    height, width, _ = src.shape
    for v in range(height):
        for u in range(width):
            r = g = b = 0.0
            for j in range(-rad, rad + 1):
                uu = min(max(u + j, 0), width - 1)
                r += k[j + rad] * src[v, uu, 0]
                g += k[j + rad] * src[v, uu, 1]
                b += k[j + rad] * src[v, uu, 2]
            out[v, u, 0], out[v, u, 1], out[v, u, 2] = r, g, b


@njit(cache=True, nogil=True)
def blur(color, sigma):
    """Separable Gaussian blur (taps out to 2σ) of H×W×3, edges replicated; returns a new array."""
    rad = max(int(2 * sigma), 1)
    k = np.exp(-0.5 * (np.arange(-rad, rad + 1) / sigma) ** 2)
    k /= k.sum()
    tmp = np.empty_like(color)
    out = np.empty_like(color)
    _blur_rows(color, k, tmp)
    _blur_rows(tmp.transpose(1, 0, 2), k, out.transpose(1, 0, 2))
    return out


@njit(cache=True, nogil=True)
def sensor(color, seed, vignette, noise, out):
    """Vignetting and sensor noise, then quantise H×W×3 colour into ``out`` (uint8)."""
    height, width, _ = color.shape
    for v in range(height):
        dv = (v + 0.5) / height * 2 - 1
        for u in range(width):
            du = (u + 0.5) / width * 2 - 1
            gain = 1 - 0.15 * vignette * (du * du + dv * dv) / 2
            n0, n1, n2 = _uniform3(seed, v, u, 3) if noise > 0 else (0.0, 0.0, 0.0)
            out[v, u, 0] = np.uint8(min(max(color[v, u, 0] * gain + 7 * noise * n0 + 0.5, 0.0), 255.0))
            out[v, u, 1] = np.uint8(min(max(color[v, u, 1] * gain + 7 * noise * n1 + 0.5, 0.0), 255.0))
            out[v, u, 2] = np.uint8(min(max(color[v, u, 2] * gain + 7 * noise * n2 + 0.5, 0.0), 255.0))
