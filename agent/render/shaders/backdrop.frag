#version 330 core
// The backdrop (view.py's Backdrop): a vertical gradient with a soft glow behind the head.
// avatar-face.js paints the same formula into the page's background.
in vec2 screen;
uniform vec3 top;
uniform vec3 bottom;
uniform vec3 glow;
out vec4 frag_color;
void main() {
    vec3 colour = mix(bottom, top, smoothstep(0.0, 1.0, screen.y));
    float d = distance(screen, vec2(0.5, 0.62));
    colour = mix(colour, glow, 0.55 * (1.0 - smoothstep(0.0, 0.55, d)));
    frag_color = vec4(colour, 1.0);
}
