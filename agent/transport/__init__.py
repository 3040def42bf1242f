"""Transport: aiohttp signalling, WebRTC media tracks and the data channel."""
