"""Each embedding website (tenant) can have its own FAQ, avatar, speaking rate and greeting (the test config's `shop`)."""
from __future__ import annotations

import statistics


def test_tenants_get_their_own_faq_avatar_and_voice(engines, config):
    shop, demo = engines.answerers.get("shop"), engines.answerers.get("demo")
    assert shop.answer("can I buy a gift card").text.startswith("Yes: gift cards")
    assert demo.answer("can I buy a gift card").matched_question != "Do you sell gift cards?", "the demo FAQ has no gift cards"
    assert demo.answer("when are you open").matched_question == "What are your opening hours?"
    assert shop.answer("when are you open").handoff
    shop_settings, demo_settings = config.tenant("shop"), config.tenant("demo")
    assert shop_settings.greeting == "Welcome to the shop!" and demo_settings.greeting == config.answer.greeting
    assert engines.voice_for(shop_settings) is not engines.voice_for(demo_settings)
    # Piper draws each phoneme's length at random (noise_w): a short sentence's length varies by about 5%, so
    # compare medians of a longer one (1.25 gives about 1.13x in all: the pauses around words do not stretch).
    text = "Thank you for your order. We will send you an email as soon as your parcel leaves our warehouse."
    shop_length = statistics.median(len(engines.voice_for(shop_settings).voice.synthesize(text)) for _ in range(3))
    demo_length = statistics.median(len(engines.voice_for(demo_settings).voice.synthesize(text)) for _ in range(3))
    assert shop_length > 1.05 * demo_length
    assert engines.avatar_for(shop_settings).name == "shop-head" and engines.avatar_for(demo_settings).name == "default"
