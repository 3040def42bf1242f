#version 330 core
// One triangle covering the screen; no vertex buffer.
out vec2 screen;
void main() {
    vec2 corner = vec2(float((gl_VertexID & 1) << 2) - 1.0, float((gl_VertexID & 2) << 1) - 1.0);
    screen = corner * 0.5 + 0.5;  // 0..1, y up
    gl_Position = vec4(corner.x, -corner.y, 0.999, 1.0);  // FLIP_Y, as the face's projection
}
