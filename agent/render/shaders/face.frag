#version 330 core
in vec3 lit;  // linear colour, lit per vertex
out vec4 frag_color;

void main() {
    frag_color = vec4(clamp(pow(lit, vec3(1.0 / 2.2)), 0.0, 1.0), 1.0);
}
