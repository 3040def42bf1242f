"""Avatars: the heads the agent can wear (MakeHuman presets, the stylised head, any glTF with ARKit shapes), apart from drawing them."""
