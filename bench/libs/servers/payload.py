"""The fixed answer every candidate server sends (a small chat-completions JSON)."""

RESPONSE = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"sim-model","choices":'
    b'[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Hello from the bench."}}],'
    b'"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35}}'
)
