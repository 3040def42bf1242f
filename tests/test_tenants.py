"""Each embedding website (tenant) can have its own FAQ, avatar, speaking rate and greeting."""
from __future__ import annotations

import yaml

from agent.config import DEFAULT_CONFIG, load_config
from agent.engines import Engines

from .conftest import SHARED

ICT = SHARED / "avatars" / "ict-face" / "ict_face_arkit51.glb"


def test_tenants_get_their_own_faq_avatar_and_voice(tmp_path):
    (tmp_path / "shop.csv").write_text("question,answer,paraphrases\nDo you sell gift cards?,Yes: gift cards from ten to two hundred dollars.,Can I buy a gift card?\n")
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["answer"]["faq_path"] = str((DEFAULT_CONFIG.parent / raw["answer"]["faq_path"]).resolve())
    raw["answer"]["versions_dir"] = str(tmp_path / "versions")
    raw["tenants"]["shop"] = {"faq_path": "shop.csv", "avatar": str(ICT) if ICT.exists() else "default", "length_scale": 1.25,
                              "greeting": "Welcome to the shop!"}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(tmp_path / "agent.yaml")
    engines = Engines.load(config)
    try:
        shop, demo = engines.answerers.get("shop"), engines.answerers.get("demo")
        assert shop.answer("can I buy a gift card").text.startswith("Yes: gift cards")
        assert demo.answer("can I buy a gift card").matched_question != "Do you sell gift cards?", "the demo FAQ has no gift cards"
        assert demo.answer("when are you open").matched_question == "What are your opening hours?"
        assert shop.answer("when are you open").handoff
        shop_settings, demo_settings = config.tenant("shop"), config.tenant("demo")
        assert shop_settings.greeting == "Welcome to the shop!" and demo_settings.greeting == config.answer.greeting
        assert engines.voice_for(shop_settings) is not engines.voice_for(demo_settings)
        text = "Thank you for your order."
        assert len(engines.voice_for(shop_settings).synthesize(text)) > 1.05 * len(engines.voice_for(demo_settings).synthesize(text))
        if ICT.exists():
            assert engines.avatar_for(shop_settings).name == "ict_face_arkit51" and engines.avatar_for(demo_settings).name == "default"
    finally:
        engines.close()
