"""Two endpoints for comparison tests: the built-in Kling and one described by a spec file."""

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
OTHER = "fal-ai/testco/fast/text-to-video"
# A second endpoint, described by a spec file: durations in "8s" form, audio, a flat price.
OTHER_SPEC = f"""
id: {OTHER}
title: Test model
typical_latency_s: 40
parameters:
  prompt: {{type: string, required: true, max_length: 100}}
  duration: {{type: string, enum: ["4s", "8s"], default: "8s"}}
  generate_audio: {{type: boolean, default: true}}
  aspect_ratio: {{type: string, enum: ["16:9", "9:16"], default: "16:9"}}
price:
  flat_usd: 0.5
"""
