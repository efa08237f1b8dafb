"""Messages: the ``Message`` model, the bound sender and the publisher."""
