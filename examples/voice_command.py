#!/usr/bin/env python3
"""Voice to action in a car: a spoken command becomes a tool call, all on the device.

  1. the command is spoken by espeak-ng into a WAV (or --audio FILE: your own recording);
  2. `edgellm serve --asr-model` transcribes it (POST /v1/audio/transcriptions, Whisper);
  3. the chat model, given the cockpit's tools, answers with one tool call (tool_choice "required":
     the server's grammar makes it a well-formed call of one of them; which one is the model's part);
  4. the call is "dispatched": printed as one JSON line {"transcript", "tool", "arguments", ...}.

  edgellm serve -m qwen2.5-coder-0.5b --asr-model whisper-tiny.gguf &
  examples/voice_command.py [--server http://127.0.0.1:8080/v1] [--say TEXT | --audio FILE]

Needs the `openai` package (pip install openai) and, without --audio, espeak-ng. OpenAI function
names allow no dots, so the tools are named climate_set_temperature etc. and dispatched as the
cockpit's actions climate.set_temperature, media.play and navigation.route.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

DEFAULT_COMMAND = "Set the temperature to twenty-one degrees."

SYSTEM = ("You are the voice assistant of a car. The driver's request was transcribed from speech. "
          "Answer with exactly one call of the tool that does what the driver asked.")


def tool(name, description, properties, required):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}


TOOLS = [
    tool("climate_set_temperature", "Set the cabin temperature in degrees Celsius.",
         {"celsius": {"type": "integer", "minimum": 16, "maximum": 28,
                      "description": "target temperature, degrees Celsius"}}, ["celsius"]),
    tool("media_play", "Play music, a radio station or a podcast.",
         {"query": {"type": "string", "description": "what to play"}}, ["query"]),
    tool("navigation_route", "Start route guidance to a destination.",
         {"destination": {"type": "string", "description": "where to go"}}, ["destination"]),
]
ACTIONS = {"climate_set_temperature": "climate.set_temperature", "media_play": "media.play",
           "navigation_route": "navigation.route"}


def speak(text, path):
    """espeak-ng's US English voice into a WAV (22.05 kHz; the server resamples)."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", path, text], check=True)


def voice_to_action(client, audio_path, chat_model=None, asr_model="whisper-1"):
    t0 = time.monotonic()
    with open(audio_path, "rb") as f:
        transcript = client.audio.transcriptions.create(model=asr_model, file=f, language="en").text.strip()
    t1 = time.monotonic()
    if chat_model is None:
        models = client.models.list().data
        chat_model = next(m.id for m in models if not (getattr(m, "meta", None) or {}).get("kind"))
    answer = client.chat.completions.create(
        model=chat_model, temperature=0, max_tokens=64, tools=TOOLS, tool_choice="required",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": transcript}])
    t2 = time.monotonic()
    call = answer.choices[0].message.tool_calls[0].function
    return {"transcript": transcript, "tool": ACTIONS.get(call.name, call.name), "function": call.name,
            "arguments": json.loads(call.arguments), "chat_model": chat_model,
            "seconds": {"transcribe": round(t1 - t0, 3), "tool_call": round(t2 - t1, 3)}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default=os.environ.get("EDGELLM_SERVER", "http://127.0.0.1:8080/v1"))
    ap.add_argument("--api-key", default=os.environ.get("EDGELLM_API_KEY", "none"))
    ap.add_argument("--model", help="chat model id (default: the server's first chat model)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--say", default=DEFAULT_COMMAND, help="the command espeak-ng speaks")
    src.add_argument("--audio", help="a recording of the command (WAV, FLAC, OGG or MP3)")
    args = ap.parse_args()
    import openai
    client = openai.OpenAI(base_url=args.server, api_key=args.api_key, timeout=300, max_retries=0)
    with tempfile.TemporaryDirectory() as d:
        audio = args.audio
        if not audio:
            audio = os.path.join(d, "command.wav")
            speak(args.say, audio)
        try:
            result = voice_to_action(client, audio, args.model)
        except openai.APIError as e:
            sys.exit(f"error: {e}")
    print(json.dumps(result))
    print(f"[{result['tool']}] {json.dumps(result['arguments'])}", file=sys.stderr)  # the car's side


if __name__ == "__main__":
    main()
