"""Transport: HTTP (signalling, the web client, the operator API) and WebRTC (one call's peer connection, its tracks and data channels)."""
