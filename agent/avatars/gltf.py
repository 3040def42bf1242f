"""glTF/GLB heads: any file with ARKit-named morph targets loads as an Avatar, and ours are written as one (`write_glb`).

Target names are matched loosely, so exports from common tools work:
`eyeBlinkLeft`, `eyeBlink_L`, `EyeBlinkLeft`, `eye_blink_left`, `blendShape1.eyeBlink_L`.
Shapes the file lacks are listed in Avatar.missing (their weights do nothing);
only a file with none of the ARKit shapes is refused.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from models.arkit import ARKIT_NAMES, COUNT
from .avatar import Avatar, Surface

SKIN = (0.86, 0.70, 0.60, 1.0)
_CANONICAL = {name.lower(): name for name in ARKIT_NAMES}


class AvatarError(ValueError):
    pass


def arkit_name(target_name: str) -> str | None:
    """The ARKit blendshape a morph-target name means, or None."""
    name = target_name.rsplit(".", 1)[-1].strip()
    side = re.search(r"[_\-\s]?(l|r|left|right)$", name, re.IGNORECASE)
    if side and (side.group(0)[0] in "_- " or side.group(1)[0].isupper()):
        stem = name[: side.start()]
        name = stem + ("Left" if side.group(1).lower().startswith("l") else "Right")
    key = re.sub(r"[_\-\s]", "", name).lower()
    return _CANONICAL.get(key)


_DTYPES = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8, 5122: np.int16, 5120: np.int8}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _read_view(gltf, view_index: int, byte_offset: int, count: int, dtype, width: int) -> np.ndarray:
    view = gltf.bufferViews[view_index]
    uri = gltf.buffers[view.buffer].uri
    data = gltf.binary_blob() if uri is None else gltf.get_data_from_buffer_uri(uri)
    item = np.dtype(dtype).itemsize * width
    stride = view.byteStride or item
    raw = np.frombuffer(data, np.uint8, count=stride * (count - 1) + item, offset=(view.byteOffset or 0) + (byte_offset or 0))
    rows = np.lib.stride_tricks.as_strided(raw, (count, item), (stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(count, width).copy()


def _accessor(gltf, index: int) -> np.ndarray:
    acc = gltf.accessors[index]
    dtype, width = _DTYPES[acc.componentType], _WIDTHS[acc.type]
    if acc.bufferView is None:
        out = np.zeros((acc.count, width), dtype)
    else:
        out = _read_view(gltf, acc.bufferView, acc.byteOffset, acc.count, dtype, width)
    if acc.sparse is not None and acc.sparse.count:
        # Morph targets are often stored sparse: only the vertices that move.
        sp = acc.sparse
        where = _read_view(gltf, sp.indices.bufferView, sp.indices.byteOffset, sp.count, _DTYPES[sp.indices.componentType], 1)[:, 0]
        out[where.astype(np.int64)] = _read_view(gltf, sp.values.bufferView, sp.values.byteOffset, sp.count, dtype, width)
    if acc.normalized and out.dtype != np.float32:
        out = out.astype(np.float32) / np.iinfo(out.dtype).max
    return out


def _node_matrices(gltf) -> dict[int, np.ndarray]:
    """World matrix of every node reachable from the default scene."""
    def local(node) -> np.ndarray:
        if node.matrix:
            return np.array(node.matrix, np.float64).reshape(4, 4).T
        t = np.eye(4)
        if node.scale:
            t = t @ np.diag([*node.scale, 1.0])
        if node.rotation:
            x, y, z, w = node.rotation
            r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                          [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                          [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
            rot = np.eye(4)
            rot[:3, :3] = r
            t = rot @ t
        if node.translation:
            move = np.eye(4)
            move[:3, 3] = node.translation
            t = move @ t
        return t

    out: dict[int, np.ndarray] = {}
    scene = gltf.scenes[gltf.scene or 0] if gltf.scenes else None
    stack = [(i, np.eye(4)) for i in (scene.nodes if scene else range(len(gltf.nodes)))]
    while stack:
        index, parent = stack.pop()
        world = parent @ local(gltf.nodes[index])
        out[index] = world
        stack.extend((c, world) for c in gltf.nodes[index].children or [])
    return out


def load_gltf_avatar(path: str | Path) -> Avatar:
    from pygltflib import GLTF2

    path = Path(path)
    if not path.exists():
        raise AvatarError(f"avatar file not found: {path}")
    try:
        gltf = GLTF2().load(str(path))
    except Exception as exc:
        raise AvatarError(f"{path}: not a readable glTF/GLB file ({exc})") from None
    positions, faces, colors, deltas, uvs, surfaces, welds = [], [], [], [], [], [], []
    found: set[str] = set()
    offset = face_offset = 0
    for node_index, world in _node_matrices(gltf).items():
        node = gltf.nodes[node_index]
        if node.mesh is None:
            continue
        mesh = gltf.meshes[node.mesh]
        names = (mesh.extras or {}).get("targetNames", []) if isinstance(mesh.extras, dict) else []
        for prim in mesh.primitives:
            if prim.mode not in (None, 4):
                continue  # lines and points are not part of a face
            pos = _accessor(gltf, prim.attributes.POSITION).astype(np.float64)
            n = len(pos)
            idx = _accessor(gltf, prim.indices).reshape(-1, 3) if prim.indices is not None else np.arange(n).reshape(-1, 3)
            linear = world[:3, :3]
            positions.append(pos @ linear.T + world[:3, 3])
            faces.append(idx.astype(np.uint32) + offset)
            welds.append(_weld(pos) + offset)
            colors.append(_colors(gltf, prim, n))
            uvs.append(_accessor(gltf, prim.attributes.TEXCOORD_0).astype(np.float32) if prim.attributes.TEXCOORD_0 is not None
                       else np.zeros((n, 2), np.float32))
            surfaces.append(_surface(gltf, prim, path, offset, n, face_offset, len(idx)))
            d = np.zeros((COUNT, n, 3), np.float32)
            for t, target in enumerate(prim.targets or []):
                name = arkit_name(names[t]) if t < len(names) else None
                position_index = target.get("POSITION") if isinstance(target, dict) else getattr(target, "POSITION", None)
                if name is None or position_index is None:
                    continue
                d[ARKIT_NAMES.index(name)] = _accessor(gltf, position_index).astype(np.float64) @ linear.T
                found.add(name)
            deltas.append(d)
            offset += n
            face_offset += len(idx)
    if not positions:
        raise AvatarError(f"{path}: no triangle meshes found")
    if not found:
        raise AvatarError(f"{path}: no morph targets with ARKit blendshape names (e.g. jawOpen, eyeBlinkLeft)")
    missing = tuple(n for n in ARKIT_NAMES if n not in found)
    return Avatar(
        name=path.stem,
        positions=np.concatenate(positions).astype(np.float32),
        faces=np.concatenate(faces),
        colors=np.concatenate(colors).astype(np.float32),
        deltas=np.concatenate(deltas, axis=1),
        missing=missing,
        uvs=np.concatenate(uvs),
        surfaces=tuple(surfaces),
        weld=np.concatenate(welds),
    )


def _weld(positions: np.ndarray) -> np.ndarray:
    """For each vertex, the first vertex at the same place: copies made at UV seams share one normal."""
    _, first, inverse = np.unique(np.round(positions, 7), axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


def _image(gltf, texture_index: int | None, path: Path) -> np.ndarray | None:
    """A texture's image as an array (RGBA for colour, as stored otherwise), from the GLB's buffer or a file beside the glTF."""
    if texture_index is None or texture_index >= len(gltf.textures or []):
        return None
    source = gltf.textures[texture_index].source
    if source is None:
        return None
    image = gltf.images[source]
    from PIL import Image

    if image.bufferView is not None:
        view = gltf.bufferViews[image.bufferView]
        data = gltf.binary_blob()[(view.byteOffset or 0):(view.byteOffset or 0) + view.byteLength]
    elif image.uri and image.uri.startswith("data:"):
        data = gltf.get_data_from_buffer_uri(image.uri)
    elif image.uri:
        data = (path.parent / image.uri).read_bytes()
    else:
        return None
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    except Exception as exc:
        raise AvatarError(f"{path}: texture {texture_index} is not a readable image ({exc})") from None


def _surface(gltf, prim, path: Path, first_vertex: int, vertex_count: int, first_face: int, face_count: int) -> Surface:
    """A primitive's material as one of our surfaces: base colour and roughness textures, alpha mode, our skin wrap (extras)."""
    material = gltf.materials[prim.material] if prim.material is not None and prim.material < len(gltf.materials or []) else None
    pbr = material.pbrMetallicRoughness if material is not None else None
    albedo = _image(gltf, pbr.baseColorTexture.index, path) if pbr is not None and pbr.baseColorTexture is not None else None
    packed = _image(gltf, pbr.metallicRoughnessTexture.index, path) if pbr is not None and pbr.metallicRoughnessTexture is not None else None
    factor = pbr.roughnessFactor if pbr is not None and pbr.roughnessFactor is not None else 1.0
    roughness_map = (packed[..., 1].astype(np.float32) * factor).astype(np.uint8) if packed is not None else None
    if albedo is not None and pbr.baseColorFactor and pbr.baseColorFactor != [1, 1, 1, 1]:
        albedo = (albedo * np.asarray(pbr.baseColorFactor, np.float32)).astype(np.uint8)
    extras = material.extras if material is not None and isinstance(material.extras, dict) else {}
    return Surface(material.name if material is not None and material.name else "surface", first_vertex, vertex_count,
                   first_face, face_count, albedo=albedo, roughness_map=roughness_map,
                   roughness=0.65 if pbr is None or packed is not None else float(factor),
                   blend=material is not None and material.alphaMode == "BLEND", wrap=float(extras.get("wrap", 0.0)))


def _colors(gltf, prim, n: int) -> np.ndarray:
    if prim.attributes.COLOR_0 is not None:
        c = _accessor(gltf, prim.attributes.COLOR_0).astype(np.float32)
        return np.concatenate([c, np.ones((n, 1), np.float32)], 1) if c.shape[1] == 3 else c
    base = SKIN
    if prim.material is not None:
        pbr = gltf.materials[prim.material].pbrMetallicRoughness
        if pbr is not None and pbr.baseColorTexture is not None:
            base = (1.0, 1.0, 1.0, 1.0)  # the texture gives the colour (its factor is applied to the texture)
        elif pbr is not None and pbr.baseColorFactor and pbr.baseColorFactor != [1, 1, 1, 1]:
            base = tuple(float(x) for x in pbr.baseColorFactor)
    return np.tile(np.array(base, np.float32), (n, 1))


def write_glb(avatar: Avatar, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb_bytes(avatar))


def glb_bytes(avatar: Avatar) -> bytes:
    """One mesh, a primitive per surface: positions, normals, UVs and colours, the surface's material (glTF PBR:
    base colour and roughness textures, alpha blended for hair cards and masked for lashes), and the 52 ARKit shapes
    as morph targets (positions and the normals' change, as our renderer blends them) named in `extras.targetNames`,
    the convention Blender and three.js read. Targets are sparse: only the vertices a shape moves are stored."""
    import pygltflib as g

    blobs: list[bytes] = []
    views: list[g.BufferView] = []
    accessors: list[g.Accessor] = []
    images: list[g.Image] = []
    textures: list[g.Texture] = []
    materials: list[g.Material] = []
    offset = 0

    def view(data: bytes, target: int | None) -> int:
        nonlocal offset
        views.append(g.BufferView(buffer=0, byteOffset=offset, byteLength=len(data), target=target))
        blobs.append(data + b"\0" * (-len(data) % 4))
        offset += len(blobs[-1])
        return len(views) - 1

    def add(array: np.ndarray, kind: str, component: int, target: int | None, bounds: bool = False) -> int:
        extra = {"min": array.min(0).tolist(), "max": array.max(0).tolist()} if bounds else {}
        accessors.append(g.Accessor(bufferView=view(np.ascontiguousarray(array).tobytes(), target), componentType=component,
                                    count=len(array), type=kind, **extra))
        return len(accessors) - 1

    def add_sparse(dense: np.ndarray) -> int:
        moved = np.flatnonzero(np.abs(dense).max(axis=1) > 0).astype(np.uint32)
        values = dense[moved].astype(np.float32) if len(moved) else np.zeros((1, 3), np.float32)
        moved = moved if len(moved) else np.zeros(1, np.uint32)
        sparse = g.Sparse(count=len(moved), indices=g.AccessorSparseIndices(bufferView=view(moved.tobytes(), None), componentType=g.UNSIGNED_INT),
                          values=g.AccessorSparseValues(bufferView=view(values.tobytes(), None)))
        accessors.append(g.Accessor(componentType=g.FLOAT, count=len(dense), type=g.VEC3, sparse=sparse,
                                    min=np.minimum(values.min(0), 0).tolist(), max=np.maximum(values.max(0), 0).tolist()))
        return len(accessors) - 1

    def add_texture(image: np.ndarray) -> int:
        data, mime = _encoded(image)
        images.append(g.Image(bufferView=view(data, None), mimeType=mime))
        textures.append(g.Texture(source=len(images) - 1, sampler=0))
        return len(textures) - 1

    primitives = []
    for surface in avatar.surfaces:
        vertices, tris = surface.vertex_slice, surface.face_slice
        attributes = g.Attributes(POSITION=add(avatar.positions[vertices].astype(np.float32), g.VEC3, g.FLOAT, g.ARRAY_BUFFER, bounds=True),
                                  NORMAL=add(avatar.rest_normals[vertices], g.VEC3, g.FLOAT, g.ARRAY_BUFFER))
        if not np.all(avatar.colors[vertices] == 1):
            attributes.COLOR_0 = add(avatar.colors[vertices].astype(np.float32), g.VEC4, g.FLOAT, g.ARRAY_BUFFER)
        if avatar.uvs is not None:
            attributes.TEXCOORD_0 = add(avatar.uvs[vertices].astype(np.float32), g.VEC2, g.FLOAT, g.ARRAY_BUFFER)
        indices = add((avatar.faces[tris] - surface.first_vertex).astype(np.uint32).reshape(-1, 1), g.SCALAR, g.UNSIGNED_INT, g.ELEMENT_ARRAY_BUFFER)
        targets = [{"POSITION": add_sparse(avatar.deltas[i, vertices]), "NORMAL": add_sparse(avatar.normal_deltas[i, vertices])} for i in range(COUNT)]
        pbr = g.PbrMetallicRoughness(metallicFactor=0.0, roughnessFactor=1.0 if surface.roughness_map is not None else surface.roughness)
        if surface.albedo is not None:
            pbr.baseColorTexture = g.TextureInfo(index=add_texture(surface.albedo))
        if surface.roughness_map is not None:
            packed = np.zeros((*surface.roughness_map.shape, 3), np.uint8)
            packed[..., 1] = surface.roughness_map  # glTF: roughness in green, metallic (0) in blue
            pbr.metallicRoughnessTexture = g.TextureInfo(index=add_texture(packed))
        holes = surface.albedo is not None and int(surface.albedo[..., 3].min()) < 255
        materials.append(g.Material(name=surface.name, pbrMetallicRoughness=pbr, extras={"wrap": surface.wrap},
                                    alphaMode="BLEND" if surface.blend else ("MASK" if holes else "OPAQUE"),
                                    alphaCutoff=0.5 if holes and not surface.blend else None, doubleSided=holes and not surface.blend))
        primitives.append(g.Primitive(attributes=attributes, indices=indices, targets=targets, material=len(materials) - 1))
    gltf = g.GLTF2(
        asset=g.Asset(generator="avatar-agent head builder (MakeHuman data, CC0; textures made by the project)"),
        scene=0, scenes=[g.Scene(nodes=[0])], nodes=[g.Node(mesh=0, name=avatar.name)],
        meshes=[g.Mesh(name=avatar.name, primitives=primitives, weights=[0.0] * COUNT, extras={"targetNames": list(ARKIT_NAMES)})],
        materials=materials, textures=textures, images=images,
        samplers=[g.Sampler(magFilter=9729, minFilter=9987, wrapS=10497, wrapT=10497)],  # linear, trilinear mipmaps, repeat
        accessors=accessors, bufferViews=views, buffers=[g.Buffer(byteLength=offset)],
    )
    gltf.set_binary_blob(b"".join(blobs))
    return b"".join(gltf.save_to_bytes())


def _encoded(image: np.ndarray) -> tuple[bytes, str]:
    """JPEG for images without transparency (a tenth of the PNG's size for the skin's fine noise), PNG otherwise."""
    from PIL import Image

    out = io.BytesIO()
    if image.ndim == 3 and image.shape[2] == 4 and int(image[..., 3].min()) < 255:
        Image.fromarray(image, "RGBA").save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    rgb = image[..., :3] if image.ndim == 3 else image
    Image.fromarray(np.ascontiguousarray(rgb)).save(out, "JPEG", quality=92)
    return out.getvalue(), "image/jpeg"
