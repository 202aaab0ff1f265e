"""Peer frameworks benched side by side with voxline (`voxline bench --peer pipecat`)."""
