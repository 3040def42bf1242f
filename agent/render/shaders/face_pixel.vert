#version 330 core
// Positions and normals come blended from the blendshapes; the lighting is per pixel (face_pixel.frag),
// so the textures' detail (brows, lips, irises, strands) is lit where it is.
layout(location = 0) in vec3 position;
layout(location = 1) in vec3 normal;    // blended too, so not unit length
layout(location = 2) in vec4 color;     // linear; multiplies the texture (white on textured avatars)
layout(location = 3) in vec2 uv;

uniform mat4 model;  // the head's pose: a rotation about the neck
uniform mat4 view_projection;

out vec3 world_position;
out vec3 world_normal;
out vec4 vertex_color;
out vec2 texcoord;

void main() {
    vec4 world = model * vec4(position, 1.0);
    world_position = world.xyz;
    world_normal = mat3(model) * normal;
    vertex_color = color;
    texcoord = uv;
    gl_Position = view_projection * world;
}
