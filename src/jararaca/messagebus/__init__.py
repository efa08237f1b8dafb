"""Messages: the ``Message`` model, the publisher and the ``@MessageHandler`` decorator."""
