"""martingale/cmv: r/ChangeMyView views and the replies that changed them."""
