"""General questions for the personal-memory fine-tuning (bench/finetune_memory.py).

REPLAY: generic questions whose answers, generated greedily by the *base* model on the device, are mixed
into the training set (replay: the adapter is taught to leave the model's general behaviour as it was).
CHECK: ten other general questions whose greedy answers are recorded before and after fine-tuning; they
never occur in the training data.
"""

REPLAY = [
    "What is the capital of France?",
    "How many days are in a leap year?",
    "What is photosynthesis?",
    "Who wrote Romeo and Juliet?",
    "What is the boiling point of water at sea level?",
    "Explain what a prime number is.",
    "What is the largest planet in our solar system?",
    "How do vaccines work?",
    "What is the difference between weather and climate?",
    "Name three primary colors.",
    "What does a CPU do in a computer?",
    "Why is the sky blue?",
    "What is the Pythagorean theorem?",
    "How many continents are there?",
    "What language is spoken in Brazil?",
    "What is gravity?",
    "Give me a tip for sleeping better.",
    "What is the chemical symbol for gold?",
    "How does a rainbow form?",
    "What is an adjective?",
    "Translate 'thank you' into Spanish.",
    "What is 12 times 12?",
    "Who painted the Mona Lisa?",
    "What is the tallest mountain on Earth?",
    "Write a haiku about autumn.",
    "What is the function of the heart?",
    "What is a noun?",
    "How many legs does a spider have?",
    "What is the freezing point of water in Fahrenheit?",
    "Suggest a name for a bakery.",
    "What is democracy?",
    "What are the three states of matter?",
    "What is the speed of light?",
    "What causes earthquakes?",
    "How do I make a cup of tea?",
    "What is a haiku?",
    "What is the main ingredient of guacamole?",
    "How many minutes are in a day?",
    "What is the currency of Japan?",
    "Give me a synonym for happy.",
]

CHECK = [
    "What is the capital of Germany?",
    "How many hours are in a day?",
    "Who was Albert Einstein?",
    "What is the largest ocean on Earth?",
    "What is 7 plus 8?",
    "What do bees make?",
    "Name a fruit that is yellow.",
    "What is the opposite of cold?",
    "How many wheels does a bicycle have?",
    "What is water made of?",
]

assert not set(q.lower() for q in REPLAY) & set(q.lower() for q in CHECK)
