"""Step 1: a labelled corpus built offline from speech engines that report phone timings."""
