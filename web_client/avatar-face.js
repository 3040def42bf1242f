// The avatar drawn in the page (render.where: browser or auto): the same GLB (textures, materials), camera, lights and backdrop as the server's
// renderer, posed from the poses the agent sends on the "poses" data channel (ASCII only).
//
// Sync by construction: every pose carries the place of its audio on the agent's clock (48 kHz samples). The
// agent says which RTP timestamp its clock 0 became ("clock" message), and the audio receiver says which RTP
// timestamp is playing now (getSynchronizationSources), so each frame shows the pose of the sound being heard.
// Poses arrive ahead of their audio and wait in a queue; barge-in ("clear") drops what is queued at once.
//
// Wire format (little-endian), as agent/output/poses.py writes it:
//   "P" | take u8 | pts u32 | 52 weights u8 | head pitch, yaw, roll i16 (1e-4 rad)    "C" | take u8 | pts u32    "K" | 0 | offset u32
// A message holds one record or several back to back.
// Poses are sent ahead, so a newer take (a sentence that starts sooner than the look-ahead, barge-in) replaces
// what is queued from its first pose on; poses of older takes are ignored (the channel is unordered).
import * as THREE from "./vendor/three/build/three.module.js";
import { GLTFLoader } from "./vendor/three/examples/jsm/loaders/GLTFLoader.js";

const RATE = 48000;
const HEAD_SCALE = 10000;

// Holds the page's frame rate by drawing fewer pixels when it falls (the canvas keeps its size on screen; the
// browser scales the drawing up). A software GL (SwiftShader, a CPU) spends its time per pixel: 0.7 of the size
// drew 58 fps where the full size drew 31. A GPU stays at full size.
export class Resolution {
  static LOW_FPS = 32;  // below this, draw smaller
  static HIGH_FPS = 48;  // above this, draw larger again (apart, so the size does not swing)
  static MIN_SCALE = 0.5;

  constructor(apply) {
    this.apply = apply;  // (scale) => void
    this.scale = 1;
    this.times = [];
  }

  // Called once a drawn frame; every second of drawing, looks at the frame rate and resizes.
  frame(now) {
    const times = this.times;
    if (times.length && now - times[times.length - 1] > 250) times.length = 0;  // a hidden tab or a stall: not the GL
    times.push(now);
    if (now - times[0] < 1000) return;
    const fps = (times.length - 1) * 1000 / (now - times[0]);
    times.length = 0;
    let scale = this.scale;
    if (fps < Resolution.LOW_FPS) scale = Math.max(Resolution.MIN_SCALE, scale * Math.sqrt(fps / (Resolution.LOW_FPS + 4)));
    else if (fps > Resolution.HIGH_FPS) scale = Math.min(1, scale * 1.1);
    if (Math.abs(scale - this.scale) > 0.01) { this.scale = scale; this.apply(scale); }
  }
}

function matrixFromRows(rows) {
  const m = new THREE.Matrix4();
  m.set(...rows[0], ...rows[1], ...rows[2], ...rows[3]);
  return m;
}

// One mesh's morph targets, blended on the CPU: 52 targets run the vertex shader at a crawl on software GL
// (SwiftShader), while most targets move few vertices, so sparse sums are cheap here.
class MorphedMesh {
  constructor(mesh, channels) {
    const geometry = mesh.geometry;
    this.geometry = geometry;
    this.position = geometry.attributes.position;
    this.normal = geometry.attributes.normal || null;
    this.basePosition = this.position.array.slice();
    this.baseNormal = this.normal ? this.normal.array.slice() : null;
    const dictionary = mesh.morphTargetDictionary || {};
    const positions = geometry.morphAttributes.position || [];
    const normals = geometry.morphAttributes.normal || [];
    this.targets = [];  // [channel index, moved vertex indices, position deltas, normal deltas]
    channels.forEach((name, channel) => {
      const t = dictionary[name];
      if (t === undefined || !positions[t]) return;
      const dp = positions[t].array, dn = normals[t] ? normals[t].array : null;
      const moved = [];
      for (let v = 0; v < dp.length / 3; v++) {
        if (dp[3 * v] || dp[3 * v + 1] || dp[3 * v + 2] || (dn && (dn[3 * v] || dn[3 * v + 1] || dn[3 * v + 2]))) moved.push(v);
      }
      const p = new Float32Array(moved.length * 3), n = dn ? new Float32Array(moved.length * 3) : null;
      moved.forEach((v, k) => {
        for (let c = 0; c < 3; c++) { p[3 * k + c] = dp[3 * v + c]; if (n) n[3 * k + c] = dn[3 * v + c]; }
      });
      this.targets.push([channel, Uint32Array.from(moved), p, n]);
    });
    delete geometry.morphAttributes.position;  // three.js must not morph again on the GPU
    delete geometry.morphAttributes.normal;
    mesh.morphTargetInfluences = undefined;
    mesh.morphTargetDictionary = undefined;
  }

  apply(weights) {
    const pos = this.position.array, nor = this.normal ? this.normal.array : null;
    pos.set(this.basePosition);
    if (nor) nor.set(this.baseNormal);
    for (const [channel, moved, dp, dn] of this.targets) {
      const w = weights[channel];
      if (w < 0.004) continue;
      for (let k = 0; k < moved.length; k++) {
        const i = 3 * moved[k], j = 3 * k;
        pos[i] += w * dp[j]; pos[i + 1] += w * dp[j + 1]; pos[i + 2] += w * dp[j + 2];
        if (nor && dn) { nor[i] += w * dn[j]; nor[i + 1] += w * dn[j + 1]; nor[i + 2] += w * dn[j + 2]; }
      }
    }
    this.position.needsUpdate = true;
    if (nor) this.normal.needsUpdate = true;
    this.geometry.computeBoundingSphere();
  }
}

// The server's backdrop (shaders/backdrop.frag): a vertical gradient with a soft glow behind the head, painted once
// into a 2D canvas.
function backdrop(colours, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const smooth = (t) => t * t * (3 - 2 * t);
  for (let y = 0; y < height; y++) {
    const up = 1 - (y + 0.5) / height;
    const t = smooth(up);
    for (let x = 0; x < width; x++) {
      const s = Math.min(Math.hypot((x + 0.5) / width - 0.5, up - 0.62) / 0.55, 1);
      const glow = 0.55 * (1 - smooth(s));
      const i = 4 * (y * width + x);
      for (let c = 0; c < 3; c++) {
        const base = colours.bottom[c] * (1 - t) + colours.top[c] * t;
        image.data[i + c] = Math.round(255 * (base * (1 - glow) + colours.glow[c] * glow));
      }
      image.data[i + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// On software GL (SwiftShader, llvmpipe) a lit pixel is what costs: three's standard material drew the textured
// head at 11 fps. There the page lights by vertex with the server's own shaders (the lean renderer's,
// render.lighting: vertex), fetched from the agent: as cheap as three's diffuse-only Lambert (measured side by
// side), and the same picture as the server's (0.5 grey levels of 255 apart, against 1.7 for Lambert).
async function vertexLitShaders(server) {
  const read = async (name) => {
    const resp = await fetch(new URL(`client/shaders/${name}`, server + "/").href);
    if (!resp.ok) throw new Error(`${name}: ${resp.status}`);
    // The server's GLSL 330 as WebGL2's GLSL ES 300 (three writes the #version line)
    return (await resp.text()).replace(/^#version 330 core\n/, "precision highp float;\n");
  };
  const [vertex, fragment] = await Promise.all([read("face_vertex.vert"), read("face_vertex.frag")]);
  return { vertex, fragment };
}

const WHITE = new THREE.DataTexture(new Uint8Array([255, 255, 255, 255]), 1, 1);
WHITE.needsUpdate = true;

// What the server draws a material's surface with (GET /api/avatar's view.surfaces, by material name); a material
// the server named otherwise keeps the GLB's own alpha mode and cut-off.
function surfaceOf(view, material) {
  const own = { cutout: material.transparent || material.alphaTest > 0, alpha_cut: material.alphaTest };
  return { ...own, ...((view.surfaces || []).find((s) => s.name === material.name) || {}) };
}

// One mesh's material as the lean renderer draws its surface (agent/render/lean.py: cut-outs, blending, the uniforms).
function vertexLit(mesh, shaders, view, camera) {
  const material = mesh.material;
  const surface = surfaceOf(view, material);
  const lights = [0, 1, 2].map((i) => view.lights[i]);  // the shaders take three; missing ones give no light
  const geometry = mesh.geometry;
  if (!geometry.attributes.color) {  // the shaders multiply by vertex colour: none given is white
    geometry.setAttribute("color", new THREE.Float32BufferAttribute(new Float32Array(4 * geometry.attributes.position.count).fill(1), 4));
  }
  const lit = new THREE.RawShaderMaterial({
    glslVersion: THREE.GLSL3,
    vertexShader: shaders.vertex,
    fragmentShader: shaders.fragment,
    defines: surface.cutout ? { CUTOUT: "" } : {},
    transparent: material.transparent,
    depthWrite: true,
    side: material.side,
    uniforms: {
      model: { value: new THREE.Matrix4() },
      view_projection: { value: new THREE.Matrix4().multiplyMatrices(camera.projectionMatrix, camera.matrixWorldInverse) },
      camera_position: { value: new THREE.Vector3().setFromMatrixPosition(camera.matrixWorld) },
      light_directions: { value: lights.map((l) => new THREE.Vector3(...(l ? l.direction : [0, -1, 0]))) },
      light_radiance: { value: lights.map((l) => (l ? new THREE.Vector3(...l.color).multiplyScalar(l.intensity) : new THREE.Vector3())) },
      ambient_light: { value: new THREE.Vector3(...view.ambient) },
      wrap: { value: surface.wrap ?? material.userData.wrap ?? 0 },
      roughness: { value: surface.roughness ?? (material.roughnessMap ? 0.65 : material.roughness) },
      alpha_cut: { value: surface.alpha_cut },
      albedo_map: { value: material.map || WHITE },
    },
  });
  lit.name = material.name;
  mesh.onBeforeRender = () => lit.uniforms.model.value.copy(mesh.matrixWorld);  // the head's turn included
  material.dispose();
  return lit;
}

function softwareGL() {
  const gl = document.createElement("canvas").getContext("webgl2");
  const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
  const name = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : "";
  return /swiftshader|llvmpipe|software/i.test(name);
}

// Loads the tenant's avatar (GLB and view, from GET /api/avatar); throws with a message a person can read.
export async function loadFace(server, info) {
  const gltf = await new GLTFLoader().loadAsync(new URL(info.glb, server + "/").href);
  const meshes = [];
  gltf.scene.traverse((node) => {
    if (node.isMesh && node.geometry.morphAttributes.position) meshes.push(new MorphedMesh(node, info.channels));
  });
  if (!meshes.length) throw new Error("the avatar has no ARKit shapes");
  return new Face(gltf.scene, meshes, info.view, info.channels, softwareGL() ? await vertexLitShaders(server) : null);
}

export class Face {
  constructor(scene, meshes, view, names, vertexShaders = null) {
    this.root = scene;
    this.vertexShaders = vertexShaders;  // {vertex, fragment}: lit by vertex as the server does on software GL; null: three's standard material
    this.meshes = meshes;
    this.view = view;
    this.names = names;
    this.channels = names.length;
    this.jawIndex = names.indexOf("jawOpen");
    this.queue = [];  // {pts, weights, head}, in clock order
    this.take = null;  // the newest take seen
    this.offset = null;  // RTP timestamp of clock 0
    this.current = { weights: new Float32Array(this.channels), head: [0, 0, 0] };
    this.frames = 0;
    this.running = false;
    this.log = [];  // [time ms, jawOpen shown], for measurements in the page
  }

  // Draws into `canvas`, posed by the "poses" channel, in sync with the audio `receiver` plays.
  start(canvas, channel, receiver, options = {}) {
    this.attach(canvas, options);
    this.receiver = receiver;
    channel.binaryType = "arraybuffer";
    channel.onmessage = (m) => this.receive(m.data);
    this.running = true;
    // A canvas resized is blank until drawn again: resized only just before a drawing, never between one and its display.
    let refit = true;
    this.resolution = new Resolution(() => { refit = true; });
    this.resized = new ResizeObserver(() => { refit = true; });
    this.resized.observe(canvas);
    const loop = (now) => {
      if (!this.running) return;
      if (this.frames > 30) this.resolution.frame(now);  // the first frames compile shaders: not the steady rate
      if (refit) { this.fit(canvas); refit = false; }
      this.draw();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  // Draws no more pixels than the canvas shows (a floating widget shows ~350 px of a 512 px view: half the pixels),
  // and fewer while the frame rate is low (`Resolution`).
  fit(canvas) {
    const view = this.view;
    const shown = canvas.clientWidth ? Math.min(1, canvas.clientWidth / view.width) : 1;
    const scale = shown * this.resolution.scale;
    const width = Math.round(view.width * scale), height = Math.round(view.height * scale);
    const size = this.renderer.getSize(new THREE.Vector2());
    if (size.x !== width || size.y !== height) this.renderer.setSize(width, height, false);
  }

  // One picture of a pose given by name ({jawOpen: 0.6, ...}), e.g. to compare with the server's renderer.
  show(canvas, named, head = [0, 0, 0], options = {}) {
    if (!this.renderer) this.attach(canvas, { readable: true, ...options });
    const weights = new Float32Array(this.channels);
    for (const [name, value] of Object.entries(named)) if (this.names.includes(name)) weights[this.names.indexOf(name)] = value;
    this.queue = [{ pts: 0, weights, head }];
    this.draw();
  }

  attach(canvas, options = {}) {
    const view = this.view;
    // Multisampling is cheap on a GPU and halves the frame rate of a software one (SwiftShader: 24 fps with it, 48 without).
    const software = !!this.vertexShaders;
    const antialias = options.antialias ?? !software;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias, alpha: true, preserveDrawingBuffer: !!options.readable });
    this.renderer.setPixelRatio(software ? 1 : Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setSize(view.width, view.height, false);
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    const scene = new THREE.Scene();
    const painted = backdrop(view.backdrop, view.width, view.height);
    if (options.readable) {  // a picture to read back (compared with the server's): the backdrop in the drawing itself
      scene.background = new THREE.CanvasTexture(painted);
      scene.background.colorSpace = THREE.SRGBColorSpace;
    } else {
      // Live, the backdrop is the canvas's own CSS background and the head is drawn over a clear canvas: as a
      // full-screen textured pass it cost SwiftShader a third of its frame rate (23 -> 35 fps).
      this.renderer.setClearColor(0x000000, 0);
      canvas.style.background = `url(${painted.toDataURL()}) center / 100% 100%`;
    }
    const camera = new THREE.PerspectiveCamera(view.yfov * 180 / Math.PI, view.width / view.height, view.znear, view.zfar);
    camera.matrixAutoUpdate = false;
    camera.matrix.copy(matrixFromRows(view.camera));
    camera.matrixWorld.copy(camera.matrix);
    camera.matrixWorldInverse.copy(camera.matrix).invert();
    // Our renderer lights with the same BRDF as three's standard material; three divides ambient light by pi.
    scene.add(new THREE.AmbientLight(new THREE.Color(...view.ambient), Math.PI));
    for (const light of view.lights) {
      const sun = new THREE.DirectionalLight(new THREE.Color(...light.color), light.intensity);
      sun.position.set(-light.direction[0], -light.direction[1], -light.direction[2]);
      scene.add(sun, sun.target);
    }
    this.head = new THREE.Group();  // turns about the neck (view.pivot), as the server's model matrix does
    this.head.matrixAutoUpdate = false;
    this.head.add(this.root);
    this.root.traverse((node) => {
      if (!node.isMesh || !node.material) return;
      if (software) {
        node.material = vertexLit(node, this.vertexShaders, view, camera);
        return;
      }
      node.material.metalness = 0;
      if (node.material.transparent) {  // hair cards: drawn in order, inner layers first, writing depth as ours do
        node.material.depthWrite = true;
        node.material.alphaTest = surfaceOf(view, node.material).alpha_cut;
      }
    });
    scene.add(this.head);
    this.scene = scene;
    this.camera = camera;
  }

  // One message: one record or several back to back (poses come four to a message).
  receive(data) {
    const bytes = new DataView(data);
    const poseBytes = 6 + this.channels + 6;
    for (let at = 0; at < bytes.byteLength;) {
      const kind = String.fromCharCode(bytes.getUint8(at));
      this.record(kind, bytes, at);
      at += kind === "P" ? poseBytes : 6;
    }
  }

  record(kind, bytes, at) {
    const take = bytes.getUint8(at + 1);
    const value = bytes.getUint32(at + 2, true);
    if (kind === "K") { this.offset = value; return; }
    if (kind !== "P" && kind !== "C") throw new Error(`unknown pose record ${kind}`);
    if (this.take !== null && take !== this.take) {
      if (((take - this.take) & 255) > 127) return;  // an older take, overtaken on the way
      this.queue = this.queue.filter((p) => p.pts < value);  // a newer one: it replaces what is queued from here on
    }
    this.take = take;
    if (kind === "P") {
      const weights = new Float32Array(this.channels);
      for (let i = 0; i < this.channels; i++) weights[i] = bytes.getUint8(at + 6 + i) / 255;
      const headAt = at + 6 + this.channels;
      const head = [0, 1, 2].map((i) => bytes.getInt16(headAt + 2 * i, true) / HEAD_SCALE);
      const pose = { pts: value, weights, head };
      let i = this.queue.length;
      while (i > 0 && this.queue[i - 1].pts > pose.pts) i--;
      this.queue.splice(i, 0, pose);
    }
  }

  // Where the heard audio is now, on the agent's clock; null before any has played.
  playingPts() {
    const sources = this.receiver ? this.receiver.getSynchronizationSources() : [];
    if (!sources.length || this.offset === null || sources[0].rtpTimestamp === undefined) return null;
    const source = sources[0];
    const since = Math.max(0, performance.timeOrigin + performance.now() - source.timestamp);
    return ((source.rtpTimestamp - this.offset) >>> 0) + since * RATE / 1000;
  }

  poseNow() {
    const now = this.playingPts();
    const queue = this.queue;
    if (!queue.length) return this.current;
    if (now === null) return queue[queue.length - 1];
    while (queue.length > 1 && queue[1].pts <= now) queue.shift();  // what is past is gone
    const [a, b] = queue;
    if (!b || now <= a.pts) return a;
    const t = (now - a.pts) / (b.pts - a.pts);  // between two poses: blend, as frames are 40 ms apart
    const weights = a.weights.map((w, i) => w + t * (b.weights[i] - w));
    return { pts: now, weights, head: a.head.map((h, i) => h + t * (b.head[i] - h)) };
  }

  draw() {
    const pose = this.poseNow();
    this.current = pose;
    for (const mesh of this.meshes) mesh.apply(pose.weights);
    const [pitch, yaw, roll] = pose.head;
    const turn = new THREE.Matrix4().makeRotationFromEuler(new THREE.Euler(pitch, yaw, roll, "ZYX"));
    const [x, y, z] = this.view.pivot;
    const toPivot = new THREE.Matrix4().makeTranslation(x, y, z), fromPivot = new THREE.Matrix4().makeTranslation(-x, -y, -z);
    this.head.matrix.copy(toPivot.multiply(turn).multiply(fromPivot));
    this.head.matrixWorldNeedsUpdate = true;
    this.renderer.render(this.scene, this.camera);
    this.frames++;
    if (this.log.length < 20000) this.log.push([performance.now(), pose.weights[this.jawIndex]]);
  }

  stop() {
    this.running = false;
    if (this.resized) this.resized.disconnect();
    this.queue = [];
    if (this.renderer) this.renderer.dispose();
  }
}
