"""A person for the customer: the hand-off waits for one, and a person takes the call over through the same avatar."""
