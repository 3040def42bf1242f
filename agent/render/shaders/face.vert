#version 330 core
// Lit per vertex: the head is dense (about 11k vertices) and the highlight broad (roughness 0.65),
// so per-pixel lighting looked the same and cost twice as much on software GL.
// The BRDF is pyrender's PBR one for a dielectric (metallic 0): GGX distribution, Schlick
// Fresnel, Smith occlusion, three directional lights and ambient, times the vertex colour.
layout(location = 0) in vec3 position;  // already blended from the blendshapes
layout(location = 1) in vec3 normal;    // blended too, so not unit length
layout(location = 2) in vec4 color;

uniform mat4 model;  // the head's pose: a rotation about the neck
uniform mat4 view_projection;
uniform vec3 camera_position;
uniform vec3 light_directions[3];  // the way the light travels
uniform vec3 light_radiance[3];    // colour * intensity
uniform vec3 ambient_light;
uniform float roughness;

out vec3 lit;

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
    vec3 light = vec3(0.0);
    for (int i = 0; i < 3; i++) {
        vec3 l = -light_directions[i];
        vec3 h = normalize(l + v);
        float nl = clamp(dot(n, l), 0.001, 1.0);
        float nh = clamp(dot(n, h), 0.0, 1.0);
        float vh = clamp(dot(v, h), 0.0, 1.0);
        float fresnel = F0 + (1.0 - F0) * pow(1.0 - vh, 5.0);
        float g = g_view * nl / (nl * (1.0 - k) + k);
        float denom = nh * nh * (a2 - 1.0) + 1.0;
        float d = a2 / (PI * denom * denom);
        float diffuse = (1.0 - fresnel) * (1.0 - F0) / PI;
        float specular = fresnel * g * d / (4.0 * nl * nv + 0.001);
        light += nl * light_radiance[i] * (diffuse + specular);
    }
    lit = (light + ambient_light) * color.rgb;
    gl_Position = view_projection * world;
}
