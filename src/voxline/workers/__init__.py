"""Process per call: the supervisor's job pool, the job process, and the wire between them.

- `pool.WorkerPool`: job processes kept warm; `run(call, context, agent, media=...)` runs a call in one.
- `job`: the job process main (`python -m voxline.workers.job --fd N`).
- `protocol`: the framing and the channel (length-prefixed messages, fds by SCM_RIGHTS, bounded).
- `media`: MediaSpec and the job-side media builders by kind (`pipe` here; `rtp`/`audiosocket`
  registered by telephony), with `JobCall`, the job's CallIO for `pipe` media.
- `bridge.CallBridge`: the supervisor side of a call in a job (transport, events, records).
- `engines.job_engines`: the one place a job builds its engines.
- `services.NodeServices`: what the node shares with jobs (the llama-server, LLM slots).
"""
