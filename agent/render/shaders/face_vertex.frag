#version 330 core
// The texture times the light its vertices got (face_vertex.vert).
in vec3 diffuse_light;
in vec3 specular_light;
in vec4 vertex_color;
in vec2 texcoord;
uniform sampler2D albedo_map;
uniform float alpha_cut;  // coverage below this is not drawn (lash gaps; hair's empty texels)
out vec4 frag_color;
void main() {
    vec4 albedo = texture(albedo_map, texcoord) * vertex_color;
#ifdef CUTOUT  // only where needed: a shader that can discard loses the early depth test
    if (albedo.a < alpha_cut) discard;
#endif
    vec3 lit = diffuse_light * albedo.rgb + specular_light;
    frag_color = vec4(clamp(pow(lit, vec3(1.0 / 2.2)), 0.0, 1.0), albedo.a);
}
