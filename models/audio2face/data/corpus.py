"""Text the voices speak: customer-service phrasing plus phonetically rich sentences.

Written for this project. Every word must be in pocketsphinx's dictionary so
speech without engine timings can be aligned; a test checks that.
"""
from __future__ import annotations

SERVICE = """
Hello, thanks for calling, how can I help you today?
Your order shipped yesterday and should arrive within three business days.
I am sorry to hear that the package arrived damaged.
You can return any item within thirty days for a full refund.
Let me connect you to a person who can look into this.
Our store opens at nine in the morning and closes at six.
We accept credit cards, debit cards and bank transfers.
Shipping is free for orders over fifty dollars.
Could you please tell me your order number?
I have reset your password, please check your email.
The warranty covers repairs for two years after purchase.
You will receive a confirmation message in a few minutes.
Is there anything else I can help you with?
We are closed on Sundays and public holidays.
Your subscription renews automatically every month.
To cancel, open your account settings and choose cancel plan.
I understand this is frustrating, and I want to fix it for you.
The delivery driver will call you before arriving.
Please keep the receipt as proof of purchase.
Our support team answers emails within one working day.
You can track your parcel on our website at any time.
I could not find that product, would you like something similar?
The discount code expired last week, but I can offer you another one.
We ship to most countries in Europe, Asia and North America.
Refunds go back to the original payment method within five days.
Good morning, my name is Sam, and I will be helping you today.
Thank you for your patience while I check that for you.
The item is back in stock, and you can order it now.
Would you prefer delivery to your home or to a pickup point?
Your appointment is booked for Tuesday at half past two.
Unfortunately we cannot change an order once it has shipped.
The battery should last about ten hours on a single charge.
Please unplug the device, wait a minute, and plug it back in.
I have added a note to your account so my colleagues can see it.
Have a wonderful day, and thank you for choosing us.
Your invoice is attached to the confirmation email.
We offer a student discount of fifteen percent.
The manual explains how to pair the headphones with your phone.
If the problem continues, we will send you a replacement.
Please hold the power button for ten seconds.
"""

PHONETIC = """
The quick brown fox jumps over the lazy dog.
She sells sea shells by the sea shore.
Peter picked a peck of pickled peppers.
A big black bug bit a big black bear.
We were away a year ago.
Few thieves move through the vivid fog.
Judge the measure of each treasure with pleasure.
The youth chose a huge blue shoe.
Why would you wear wool in warm weather?
Oh no, the old boat floated over the cold ocean.
My mother made marmalade every Monday.
Think about three things that you thank them for.
Keep calm and carry the cake to the kitchen.
The ship was shaped like a shiny shell.
Cheap chips and cheese are a child's choice.
Bring the red ring back to the bright room.
Eat each meal with ease and peace.
Ahh, the father saw the large garden.
Who knew the news would move so soon?
I owe you a new blue canoe.
Put the book on the wooden hook.
Ask the cat to catch the black rat.
Her first word was bird, not turkey.
The boy enjoyed the noisy toy.
Out loud, the crowd shouted about the house.
I like bright white kites at night.
Pay the man eight dollars and take the train.
Leave the green leaves on the tree.
Zebras zigzag across the sandy zone.
Vivian loves violets and velvet vests.
This is the thing that they both wanted.
Mommy, may I please have more milk?
Bob's pop band played a bop at the pub.
Fine feathers fly far from the farm.
Look, a cook took a good look at the book.
Lovely lemons lie on the little table.
Run around the rugged rocks rapidly.
Glue the gray goat's gloves together.
Yes, you may use the yellow yarn.
What would we want with wet wet wood?
"""

SHORT = """
Yes.
No, thank you.
Okay, one moment please.
Sure!
Hmm, let me think.
Hello there.
Goodbye.
Of course.
Right away.
Absolutely, I can do that.
"""


def sentences() -> list[str]:
    return [line.strip() for block in (SERVICE, PHONETIC, SHORT) for line in block.strip().splitlines() if line.strip()]
