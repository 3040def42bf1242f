#version 330 core
// pyrender's PBR BRDF for a dielectric (metallic 0: GGX distribution, Schlick Fresnel, Smith
// occlusion) with three directional lights and ambient, as three.js's standard material does,
// plus an optional wrap of the diffuse term round the terminator: light that soaks into skin
// softens its shadow edge (0 = none, the plain BRDF).
in vec3 world_position;
in vec3 world_normal;
in vec4 vertex_color;
in vec2 texcoord;

uniform sampler2D albedo_map;     // sRGB-encoded, decoded by the GPU; alpha is coverage
uniform sampler2D roughness_map;  // roughness in the red channel
uniform vec3 camera_position;
uniform vec3 light_directions[3];  // the way the light travels
uniform vec3 light_radiance[3];    // colour * intensity
uniform vec3 ambient_light;
uniform float wrap;
uniform float alpha_cut;  // coverage below this is not drawn (lash gaps; hair's empty texels)

out vec4 frag_color;

const float PI = 3.141592653589793;
const float F0 = 0.04;

void main() {
    vec4 albedo = texture(albedo_map, texcoord) * vertex_color;
#ifdef CUTOUT  // only where needed: a shader that can discard loses the early depth test
    if (albedo.a < alpha_cut) discard;
#endif
    float roughness = clamp(texture(roughness_map, texcoord).r, 0.05, 1.0);
    vec3 n = normalize(world_normal);
    vec3 v = normalize(camera_position - world_position);
    if (dot(n, v) < 0.0 && !gl_FrontFacing) n = -n;  // the back of a card (hair, lashes)
    float nv = clamp(abs(dot(n, v)), 0.001, 1.0);
    float a2 = roughness * roughness * roughness * roughness;
    float k = (roughness + 1.0) * (roughness + 1.0) / 8.0;
    float g_view = nv / (nv * (1.0 - k) + k);
    vec3 light = vec3(0.0);
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
        float diffuse = (1.0 - fresnel) * (1.0 - F0) / PI;
        float specular = fresnel * g * d / (4.0 * nl * nv + 0.001);
        light += light_radiance[i] * (soft * diffuse + nl * specular);
    }
    vec3 lit = (light + ambient_light) * albedo.rgb;
    frag_color = vec4(clamp(pow(lit, vec3(1.0 / 2.2)), 0.0, 1.0), albedo.a);
}
