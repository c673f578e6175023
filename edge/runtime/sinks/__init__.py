"""Where results go: the ZeroMQ publisher and its subscriber, the serial link, the recording and the overlay video."""
