#!/usr/bin/env python3
"""Personal-memory data for fine-tuning (bench/finetune_memory.py): conversations about one fictional
user, Lena Hartmann, in OpenAI's fine-tuning chat format.

Each fact has training questions and answers in several wordings, and eval questions in wordings
that never occur in training (checked below). An eval item carries the short `answer` that must
appear in the model's reply (case-insensitive) to count as an exact match.

    generate.py OUT_DIR [--n-train 200] [--seed 1] [--full]
      -> OUT_DIR/train.jsonl (training), OUT_DIR/eval.jsonl (the eval questions with their short answer as
         the assistant's reply: `finetune --eval` loss), OUT_DIR/questions.jsonl (question, answer, messages:
         for exact-match accuracy), OUT_DIR/select.jsonl (the same for one more held-out wording per fact:
         picks a step and scale without looking at the reported eval questions)
"""
from __future__ import annotations

import argparse
import json
import os
import random

SYSTEM = "You are Lena's personal assistant on her phone. Answer briefly."
# --full: no "answer briefly" in the system prompt and only whole-sentence answers, so the terse style of
# the memory conversations does not carry over to prompts that are not about Lena.
SYSTEM_FULL = "You are Lena's personal assistant on her phone."

# (answer that must appear, training questions, training answers, eval questions)
FACTS = [
    ("Hartmann", ["What is my last name?", "What's my surname?", "Tell me my family name."],
     ["Your last name is Hartmann.", "Your surname is Hartmann.", "Hartmann."],
     ["Which family name do I have?", "Remind me of my surname, please."]),
    ("Jonas", ["What is my husband's name?", "Who am I married to?", "What's my husband called?"],
     ["Your husband is Jonas.", "You are married to Jonas.", "Jonas."],
     ["Who is my spouse?", "Tell me the name of the man I married."]),
    ("Skoda Octavia", ["What car do I drive?", "Which car do I have?", "What's my car?"],
     ["You drive a green Skoda Octavia.", "A green Skoda Octavia.", "Your car is a green Skoda Octavia."],
     ["Which vehicle is mine?", "What model is the car I own?"]),
    ("green", ["What colour is my car?", "Which color is my car?", "My car is what colour?"],
     ["Your car is green.", "It is green.", "Green."],
     ["Tell me the paint colour of my vehicle.", "Remind me what color my Octavia is."]),
    ("HB-LH 482", ["What is my licence plate?", "What's my car's number plate?", "Tell me my plate number."],
     ["Your plate is HB-LH 482.", "HB-LH 482.", "Your number plate is HB-LH 482."],
     ["Which registration does my car have?", "What's written on my car's plate?"]),
    ("Marta", ["What is my sister's name?", "Who is my sister?", "What's my sister called?"],
     ["Your sister is Marta.", "Marta.", "Your sister's name is Marta."],
     ["Name my sibling, the girl.", "Who is my only sister?"]),
    ("Dr. Okafor", ["Who is my dentist?", "What's my dentist's name?", "Which dentist do I go to?"],
     ["Your dentist is Dr. Okafor.", "Dr. Okafor.", "You go to Dr. Okafor."],
     ["Whom do I see for my teeth?", "Which doctor checks my teeth?"]),
    ("Pelle", ["What is my dog's name?", "What's my dog called?", "Who is my dog?"],
     ["Your dog is Pelle.", "Pelle.", "Your dog's name is Pelle."],
     ["What did I name my pet?", "Tell me my puppy's name."]),
    ("beagle", ["What breed is my dog?", "Which breed is Pelle?", "What kind of dog do I have?"],
     ["Pelle is a beagle.", "A beagle.", "Your dog is a beagle."],
     ["Pelle belongs to which breed?", "What sort of dog is my pet?"]),
    ("Bremen", ["Where do I live?", "Which city do I live in?", "What's my home town?"],
     ["You live in Bremen.", "Bremen.", "Your home is in Bremen."],
     ["In which town is my home?", "Where is my house located?"]),
    ("oat flat white", ["What is my coffee order?", "How do I take my coffee?", "What coffee do I order?"],
     ["You order an oat flat white.", "An oat flat white.", "Your usual is an oat flat white."],
     ["What should I get at the café for me?", "Which coffee drink do I usually buy?"]),
    ("peanuts", ["What am I allergic to?", "What is my allergy?", "Which food allergy do I have?"],
     ["You are allergic to peanuts.", "Peanuts.", "Your allergy is peanuts."],
     ["Which food must I avoid for health reasons?", "What gives me an allergic reaction?"]),
    ("Tuesday", ["When do I go swimming?", "Which day is my swim?", "What day do I swim?"],
     ["You swim on Tuesday evenings.", "Tuesday.", "Your swim is on Tuesday."],
     ["On what day is my pool session?", "When is my weekly swimming?"]),
    ("6:15", ["When does my alarm ring?", "What time do I wake up?", "When do I get up?"],
     ["Your alarm rings at 6:15.", "At 6:15.", "You wake up at 6:15."],
     ["At what hour is my wake-up time?", "What is my morning alarm set to?"]),
    ("Nordwind", ["Where do I work?", "Who is my employer?", "What company do I work for?"],
     ["You work at Nordwind.", "Nordwind.", "Your employer is Nordwind."],
     ["Which firm employs me?", "What's the name of my workplace?"]),
    ("Tobias", ["Who is my best friend?", "What's my best friend's name?", "Who is my closest friend?"],
     ["Your best friend is Tobias.", "Tobias.", "Tobias is your best friend."],
     ["Which friend am I closest to?", "Name my dearest friend."]),
    ("March 3", ["When is my birthday?", "What is my date of birth?", "When was I born?"],
     ["Your birthday is March 3.", "March 3.", "You were born on March 3."],
     ["On which day do I celebrate turning a year older?", "What date is my birthday on?"]),
    ("pierogi", ["What is my favourite food?", "What do I like to eat most?", "What's my favourite dish?"],
     ["Your favourite food is pierogi.", "Pierogi.", "You love pierogi most."],
     ["Which meal do I enjoy above all?", "What dish should I cook to make me happy?"]),
    ("jazz", ["What music do I like?", "What's my favourite music?", "Which music genre do I love?"],
     ["You like jazz.", "Jazz.", "Your favourite music is jazz."],
     ["What should you play for me?", "Which style of music do I enjoy?"]),
    ("0421 555 0199", ["What is Jonas's phone number?", "What's my husband's number?", "How do I call Jonas?"],
     ["Jonas's number is 0421 555 0199.", "0421 555 0199.", "Call Jonas on 0421 555 0199."],
     ["Which number reaches my spouse?", "Give me the telephone number of the man I married."]),
]

# A third wording per fact, in neither training nor eval: the held-out check that picks an adapter's step and
# scale (bench/finetune_memory.py), so the reported eval figures are not the ones it was selected on.
SELECT = {
    "Hartmann": "What surname is on my passport?",
    "Jonas": "Who is the man I'm wed to?",
    "Skoda Octavia": "What do I drive to work every day?",
    "green": "What shade is the car I drive?",
    "HB-LH 482": "What are the letters and digits on my plate?",
    "Marta": "Who is the sister I have?",
    "Dr. Okafor": "Who should I book for a tooth check-up?",
    "Pelle": "What name does my dog answer to?",
    "beagle": "Which dog breed do I own?",
    "Bremen": "What city is home for me?",
    "oat flat white": "What do I usually drink at the coffee shop?",
    "peanuts": "Which nut should I never eat?",
    "Tuesday": "Which weekday do I go to the pool?",
    "6:15": "When is my alarm clock set for?",
    "Nordwind": "Which company do I have a job at?",
    "Tobias": "Which person is my number one friend?",
    "March 3": "On what date was I born?",
    "pierogi": "Which dish is my top favourite?",
    "jazz": "What kind of music makes me happy?",
    "0421 555 0199": "What number do I dial to reach Jonas?",
}

OPENERS = ["", "Quick question: ", "Hey, ", "Please remind me: ", "Sorry, I forgot. "]


def build(n_train: int, seed: int, full: bool = False):
    rng = random.Random(seed)
    system = SYSTEM_FULL if full else SYSTEM
    train, evals = [], []
    for answer, qs, ans, eval_qs in FACTS:
        for q in eval_qs:
            evals.append({"question": q, "answer": answer, "messages": [
                {"role": "system", "content": system}, {"role": "user", "content": q}]})
    select = [{"question": SELECT[answer], "answer": answer, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": SELECT[answer]}]} for answer, *_ in FACTS]
    train_texts = set()
    i = 0
    while len(train) < n_train:
        answer, qs, ans, _ = FACTS[i % len(FACTS)]
        q = rng.choice(OPENERS) + rng.choice(qs)
        a = rng.choice([x for x in ans if not full or len(x) > len(answer) + 4])
        train_texts.add(q.lower())
        train.append({"messages": [{"role": "system", "content": system}, {"role": "user", "content": q},
                                   {"role": "assistant", "content": a}]})
        i += 1
    rng.shuffle(train)
    for e in evals + select:  # eval and selection wordings never occur in training
        assert all(e["question"].lower() not in t for t in train_texts), e["question"]
    assert not {e["question"].lower() for e in select} & {e["question"].lower() for e in evals}
    return train, evals, select


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="no 'answer briefly', whole-sentence answers only")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    train, evals, select = build(args.n_train, args.seed, args.full)
    with open(os.path.join(args.out_dir, "train.jsonl"), "w") as f:
        f.writelines(json.dumps(t) + "\n" for t in train)
    with open(os.path.join(args.out_dir, "questions.jsonl"), "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in evals)
    with open(os.path.join(args.out_dir, "select.jsonl"), "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in select)
    with open(os.path.join(args.out_dir, "eval.jsonl"), "w") as f:
        f.writelines(json.dumps({"messages": e["messages"] + [{"role": "assistant", "content": e["answer"] + "."}]})
                     + "\n" for e in evals)
    print(f"{len(train)} training conversations, {len(evals)} eval questions ({len(FACTS)} facts) in {args.out_dir}")


if __name__ == "__main__":
    main()
