"""One node, several agents: which agent takes a call (dispatch rules), and what is known of the call
(`CallMetadata`) that the agent's prompt and tools may use."""
