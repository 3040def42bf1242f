#version 330 core
// Lit per vertex (render.lighting: vertex, the default on software GL): the BRDF of face_pixel.frag,
// evaluated at the vertices and interpolated; the textures still give every pixel its colour.
// Lighting each pixel cost 2-3x the frame time on llvmpipe (README, "The face").
layout(location = 0) in vec3 position;
layout(location = 1) in vec3 normal;
layout(location = 2) in vec4 color;
layout(location = 3) in vec2 uv;
uniform mat4 model;
uniform mat4 view_projection;
uniform vec3 camera_position;
uniform vec3 light_directions[3];
uniform vec3 light_radiance[3];
uniform vec3 ambient_light;
uniform float wrap;
uniform float roughness;  // the surface's typical value (its roughness map is read per pixel only when lit per pixel)
out vec3 diffuse_light;
out vec3 specular_light;
out vec4 vertex_color;
out vec2 texcoord;
const float PI = 3.141592653589793;
const float F0 = 0.04;
void main() {
    vec4 world = model * vec4(position, 1.0);
    vec3 n = normalize(mat3(model) * normal);
    vec3 v = normalize(camera_position - world.xyz);
    float nv = clamp(abs(dot(n, v)), 0.001, 1.0);
    float a2 = roughness * roughness * roughness * roughness;
    float k = (roughness + 1.0) * (roughness + 1.0) / 8.0;
    float g_view = nv / (nv * (1.0 - k) + k);
    vec3 diffuse = ambient_light;
    vec3 specular = vec3(0.0);
    for (int i = 0; i < 3; i++) {
        vec3 l = -light_directions[i];
        vec3 h = normalize(l + v);
        float cosine = dot(n, l);
        float nl = clamp(cosine, 0.001, 1.0);
        float soft = clamp((cosine + wrap) / (1.0 + wrap), 0.0, 1.0);
        float nh = clamp(dot(n, h), 0.0, 1.0);
        float vh = clamp(dot(v, h), 0.0, 1.0);
        float fresnel = F0 + (1.0 - F0) * pow(1.0 - vh, 5.0);
        float g = g_view * nl / (nl * (1.0 - k) + k);
        float denom = nh * nh * (a2 - 1.0) + 1.0;
        float d = a2 / (PI * denom * denom);
        diffuse += light_radiance[i] * soft * (1.0 - fresnel) * (1.0 - F0) / PI;
        specular += light_radiance[i] * nl * fresnel * g * d / (4.0 * nl * nv + 0.001);
    }
    diffuse_light = diffuse;
    specular_light = specular;
    vertex_color = color;
    texcoord = uv;
    gl_Position = view_projection * world;
}
