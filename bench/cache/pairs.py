"""A labelled set of prompt pairs for the semantic cache, written for Stellwerk (issue 13).

``PAIRS`` is a list of ``(a, b, should_hit, category)``. Positives are paraphrases that deserve the same
answer; negatives are near-duplicates that must not share one: swapped numbers, units, currencies,
entities, negation, another language, different code, opposite words. Part of it is hand-written
pairs, part is hand-written templates filled with hand-written slot values (every template of a
category yields pairs that differ only where the category says).
"""

from __future__ import annotations

import itertools

Pair = tuple[str, str, bool, str]

# -- positives: paraphrases ------------------------------------------------------------------------------------------
PARAPHRASES: list[tuple[str, str]] = [
    ("How do I reverse a list in Python?", "What's the way to reverse a list in Python?"),
    ("How can I reverse a string in JavaScript?", "What is the best way to reverse a string in JavaScript?"),
    ("What is the capital of France?", "what's the capital of France"),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("How many continents are there?", "How many continents are there in the world?"),
    ("What causes rain?", "What makes it rain?"),
    ("Why is the sky blue?", "Why does the sky look blue?"),
    ("How do vaccines work?", "How does a vaccine work?"),
    ("What is the speed of light?", "How fast does light travel?"),
    ("How do I make pancakes?", "How can I make pancakes?"),
    ("Give me a recipe for banana bread.", "Can you give me a banana bread recipe?"),
    ("What are the symptoms of the flu?", "What are common flu symptoms?"),
    ("How do I center a div in CSS?", "How can I center a div with CSS?"),
    ("Explain how a hash table works.", "Can you explain how hash tables work?"),
    ("What is the difference between TCP and UDP?", "What's the difference between TCP and UDP?"),
    ("How do I undo the last git commit?", "How can I undo my last git commit?"),
    ("Summarize the plot of Hamlet.", "Give me a summary of the plot of Hamlet."),
    ("What is machine learning?", "Can you explain what machine learning is?"),
    ("How does compound interest work?", "Explain how compound interest works."),
    ("What is the tallest mountain on Earth?", "Which mountain is the tallest on Earth?"),
    ("How do I improve my sleep?", "How can I improve my sleep?"),
    ("What is a good way to learn Spanish?", "What's a good way to learn Spanish?"),
    ("How do I install Docker on Ubuntu?", "How can I install Docker on Ubuntu?"),
    ("What does HTTP stand for?", "What is HTTP short for?"),
    ("How do magnets work?", "How does a magnet work?"),
    ("Tell me a joke about cats.", "Tell me a cat joke."),
    ("Write a haiku about autumn.", "Write me a haiku about autumn."),
    ("What is the boiling point of water?", "At what temperature does water boil?"),
    ("How do I read a CSV file in Python?", "How can I read a CSV file with Python?"),
    ("What is the meaning of life?", "What's the meaning of life?"),
    ("How do airplanes fly?", "How does an airplane fly?"),
    ("What is inflation?", "Can you explain what inflation is?"),
    ("Recommend a good science fiction book.", "Can you recommend a good science fiction book?"),
    ("How do I write a cover letter?", "How should I write a cover letter?"),
    ("What is the Pythagorean theorem?", "Explain the Pythagorean theorem."),
    ("How does the stock market work?", "Explain how the stock market works."),
    ("What is the largest ocean?", "Which ocean is the largest?"),
    ("How do I stop procrastinating?", "How can I stop procrastinating?"),
    ("What is quantum computing?", "Can you explain quantum computing?"),
    ("What are the benefits of exercise?", "What are the benefits of regular exercise?"),
    ("How do I sort a dictionary by value in Python?", "How can I sort a Python dictionary by value?"),
    ("What is an API?", "What exactly is an API?"),
    ("How do I get rid of hiccups?", "How can I get rid of hiccups?"),
    ("Who painted the Mona Lisa?", "Who was the painter of the Mona Lisa?"),
    ("What is the population of Canada?", "How many people live in Canada?"),
    ("How do I boil an egg?", "How should I boil an egg?"),
    ("What is blockchain?", "Explain what a blockchain is."),
    ("What time zone is Japan in?", "Which time zone is Japan in?"),
    ("How do I change a flat tire?", "How can I change a flat tire?"),
    ("What is the theory of relativity?", "Explain the theory of relativity."),
    ("How do I merge two dictionaries in Python?", "What's the way to merge two dictionaries in Python?"),
    ("What are prime numbers?", "Explain what prime numbers are."),
    ("How do I meditate?", "How should I meditate?"),
    ("What is the function of the heart?", "What does the heart do?"),
    ("How does Wi-Fi work?", "How does WiFi work?"),
    ("What is the GDP of Germany?", "What's the GDP of Germany?"),
    ("How do I tie a tie?", "How can I tie a tie?"),
    ("Translate good morning into Italian.", "Translate 'good morning' into Italian please."),
    ("What is a black hole?", "Can you explain what a black hole is?"),
    ("How do I calm down when I'm anxious?", "How can I calm down when I feel anxious?"),
]

CONCEPTS = [
    "photosynthesis", "recursion", "a neural network", "supply and demand", "the water cycle", "entropy",
    "a mortgage", "plate tectonics", "a compiler", "opportunity cost", "natural selection", "an index fund",
    "dark matter", "a virus", "the greenhouse effect", "object-oriented programming", "a recession",
    "cognitive dissonance", "a binary search", "the immune system", "a credit score", "climate change",
    "a sonnet", "an eclipse", "dynamic programming", "a blockchain", "gravity", "a democracy", "metabolism",
    "a black hole", "osmosis", "encryption", "a limited liability company", "a haiku", "an algorithm",
    "a tax deduction", "the placebo effect", "a supernova", "a database index", "a load balancer",
    "a circuit breaker in software", "mindfulness", "a hedge fund", "the scientific method", "a symphony",
    "a tsunami", "a cryptocurrency", "a semiconductor", "a metaphor", "machine translation",
]
TEMPLATE_PAIRS = [
    ("What is {}?", "Can you explain what {} is?"),
    ("Explain {} in simple terms.", "Explain {} simply."),
    ("What is {}?", "what is {}"),
    ("Can you describe {}?", "Please describe {}."),
    ("Give me a short explanation of {}.", "Give me a brief explanation of {}."),
    ("Help me understand {}.", "Help me to understand {}."),
]

# -- negatives: near-duplicates ------------------------------------------------------------------------------------------
NUMBERS = [
    ("What is 15% of 80?", "What is 15% of 60?"), ("What is 12 times 7?", "What is 12 times 8?"),
    ("What is 2+2?", "What is 2*2?"), ("Is 97 a prime number?", "Is 91 a prime number?"),
    ("What is the square root of 144?", "What is the square root of 169?"),
    ("Write a poem with 4 stanzas about the sea.", "Write a poem with 5 stanzas about the sea."),
    ("Give me 3 ideas for a birthday party.", "Give me 10 ideas for a birthday party."),
    ("What happened in 1969?", "What happened in 1968?"), ("Convert 100 to binary.", "Convert 200 to binary."),
    ("What is 1000 divided by 8?", "What is 1000 divided by 4?"), ("Plan a 3 day trip to the coast.",
                                                                   "Plan a 7 day trip to the coast."),
    ("List 5 fruits high in vitamin C.", "List 8 fruits high in vitamin C."),
    ("What is 3 to the power of 4?", "What is 4 to the power of 3?"),
    ("Summarize this in 50 words.", "Summarize this in 100 words."),
    ("How much is a 20% tip on 45 dollars?", "How much is a 15% tip on 45 dollars?"),
    ("What is 7 factorial?", "What is 8 factorial?"), ("Solve x + 5 = 12.", "Solve x + 5 = 13."),
    ("What year was 30 years ago?", "What year was 40 years ago?"),
    ("Give me two reasons to learn Rust.", "Give me three reasons to learn Rust."),
    ("What is the 10th Fibonacci number?", "What is the 12th Fibonacci number?"),
]
NUMBER_TEMPLATES = [("What is {} plus {}?", [(3, 4), (4, 3), (10, 20), (20, 30), (7, 9), (9, 11)]),
                    ("What is {} percent of {}?", [(10, 50), (10, 40), (25, 200), (25, 300), (5, 80), (15, 80)]),
                    ("How many minutes are in {} hours and {} minutes?", [(2, 10), (2, 20), (3, 15), (5, 15)]),
                    ("Round {} to {} decimal places.", [(3.14159, 2), (3.14159, 3), (2.71828, 1), (2.71828, 2)])]

UNITS = [
    ("Convert 10 miles to km.", "Convert 10 km to miles."), ("How many grams are in a pound?",
                                                             "How many grams are in an ounce?"),
    ("Convert 30 degrees Celsius to Fahrenheit.", "Convert 30 degrees Fahrenheit to Celsius."),
    ("How many liters are in 5 gallons?", "How many milliliters are in 5 gallons?"),
    ("What is 6 feet in meters?", "What is 6 feet in centimeters?"),
    ("How long does it take to walk 5 km?", "How long does it take to walk 5 miles?"),
    ("Convert 2 cups to tablespoons.", "Convert 2 cups to teaspoons."),
    ("How many seconds are in 3 hours?", "How many seconds are in 3 days?"),
    ("Is 100 kg heavy for a suitcase?", "Is 100 lbs heavy for a suitcase?"),
    ("What is 60 mph in km/h?", "What is 60 km/h in mph?"), ("How many MB are in 3 GB?",
                                                            "How many KB are in 3 GB?"),
    ("Cook the chicken for 20 minutes at 200 C?", "Cook the chicken for 20 minutes at 200 F?"),
    ("How far is 10 kilometers in miles?", "How far is 10 meters in miles?"),
    ("Convert 500 ml to ounces.", "Convert 500 liters to ounces."),
    ("Is 40 hours a week a lot?", "Is 40 days a week a lot?"),
]
UNIT_TEMPLATE = "Convert {} {} to {}."
UNIT_SETS = [("kilometers", "miles"), ("meters", "feet"), ("kilograms", "pounds"), ("liters", "gallons"),
             ("Celsius", "Fahrenheit"), ("inches", "centimeters"), ("hours", "minutes"), ("ounces", "grams")]

CURRENCY_CODES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"]
CURRENCY_TEMPLATES = ["convert {n} {a} to {b}", "How much is {n} {a} in {b}?", "What is the exchange rate from {a} to {b}?"]

ENTITIES = [
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("Who wrote Hamlet?", "Who wrote Macbeth?"), ("What is the population of Tokyo?", "What is the population of Osaka?"),
    ("Tell me about the history of Rome.", "Tell me about the history of Athens."),
    ("How tall is the Eiffel Tower?", "How tall is the Statue of Liberty?"),
    ("When did Napoleon die?", "When did Wellington die?"), ("Who founded Microsoft?", "Who founded Apple?"),
    ("What is the GDP of Brazil?", "What is the GDP of Argentina?"),
    ("Recommend restaurants in Berlin.", "Recommend restaurants in Munich."),
    ("What language is spoken in Brazil?", "What language is spoken in Mexico?"),
    ("How do I get from Paris to London?", "How do I get from London to Paris?"),
    ("Compare Python and Java.", "Compare Python and Go."), ("Who is the CEO of Tesla?", "Who is the CEO of Google?"),
    ("What is the weather like in Madrid in July?", "What is the weather like in Lisbon in July?"),
    ("Summarize the life of Marie Curie.", "Summarize the life of Albert Einstein."),
    ("What did Aristotle believe?", "What did Plato believe?"),
    ("Is Toyota more reliable than Honda?", "Is Honda more reliable than Toyota?"),
    ("What is the currency of Sweden?", "What is the currency of Norway?"),
    ("How old is Barack Obama?", "How old is Joe Biden?"), ("Where is Kenya?", "Where is Ghana?"),
]
ENTITY_TEMPLATES = [
    ("What is the capital of {}?", ["Spain", "Italy", "Canada", "Australia", "Japan", "Egypt", "Peru", "Chile",
                                     "Norway", "Finland", "Kenya", "Vietnam"]),
    ("Who was {}?", ["Julius Caesar", "Cleopatra", "Isaac Newton", "Ada Lovelace", "Nikola Tesla", "Charles Darwin",
                     "Leonardo da Vinci", "Galileo Galilei"]),
    ("What is the population of {}?", ["India", "China", "Nigeria", "Germany", "France", "Brazil", "Mexico",
                                        "Indonesia"]),
    ("Tell me about the history of {}.", ["Poland", "Hungary", "Greece", "Turkey", "Portugal", "Ireland"]),
]

NEGATIONS = [
    ("Is coffee good for your health?", "Is coffee not good for your health?"),
    ("Which foods contain gluten?", "Which foods do not contain gluten?"),
    ("Should I use tabs for indentation?", "Should I not use tabs for indentation?"),
    ("Why do cats purr?", "Why don't cats purr?"), ("Can dogs eat grapes?", "Can't dogs eat grapes?"),
    ("List animals that can swim.", "List animals that cannot swim."),
    ("Write a function that returns True if the list is sorted.",
     "Write a function that returns True if the list is not sorted."),
    ("Is it safe to drink tap water in Spain?", "Is it not safe to drink tap water in Spain?"),
    ("Which countries use the euro?", "Which countries never used the euro?"),
    ("Give me recipes with meat.", "Give me recipes without meat."),
    ("Why does my code compile?", "Why doesn't my code compile?"),
    ("Which vitamins are water soluble?", "Which vitamins are not water soluble?"),
    ("Do plants need sunlight?", "Do plants not need sunlight?"),
    ("Is zero an even number?", "Is zero not an even number?"),
    ("Why is my phone charging?", "Why is my phone not charging?"),
    ("Find words that rhyme with cat.", "Find words that don't rhyme with cat."),
    ("Which birds can fly?", "Which birds cannot fly?"),
    ("Is it a good idea to invest in bonds?", "Is it never a good idea to invest in bonds?"),
    ("Explain why the test passes.", "Explain why the test does not pass."),
    ("Does the moon have an atmosphere?", "Doesn't the moon have an atmosphere?"),
]
NEGATION_TEMPLATES = ["Is {} healthy?", "Is {} not healthy?"]
NEGATION_FOODS = ["butter", "rice", "bread", "cheese", "chocolate", "red wine", "tofu", "popcorn", "honey", "milk"]

LANGUAGES = [
    ("What is the capital of France?", "Quelle est la capitale de la France ?"),
    ("How are you today?", "Wie geht es dir heute?"), ("Where is the train station?", "¿Dónde está la estación de tren?"),
    ("What time is it?", "Che ore sono?"), ("I would like a coffee, please.", "Ich hätte gerne einen Kaffee, bitte."),
    ("How do I learn to code?", "Comment apprendre à coder ?"), ("Tell me a joke.", "Cuéntame un chiste."),
    ("What is the weather like today?", "Wie ist das Wetter heute?"), ("Thank you very much!", "Muchas gracias!"),
    ("Explain photosynthesis.", "Explique la photosynthèse."), ("What is love?", "Was ist Liebe?"),
    ("How old are you?", "Quanti anni hai?"), ("Good night and sleep well.", "Boa noite e durma bem."),
    ("Where can I buy bread?", "Waar kan ik brood kopen?"), ("What is your name?", "Как тебя зовут?"),
    ("How much does this cost?", "これはいくらですか？"), ("Where is the library?", "图书馆在哪里？"),  # noqa: RUF001
    ("I need help with my homework.", "Necesito ayuda con mi tarea."),
    ("What should I cook for dinner?", "Was soll ich zum Abendessen kochen?"),
    ("Explain recursion in simple terms.", "Explique la récursivité en termes simples."),
    ("Write a short poem about the sea.", "Schreibe ein kurzes Gedicht über das Meer."),
    ("What are the benefits of exercise?", "Quali sono i benefici dell'esercizio fisico?"),
    ("How do I make pancakes?", "Hoe maak ik pannenkoeken?"),
    ("Summarize the news for me.", "Resume las noticias para mí."),
    ("What is machine learning?", "Qu'est-ce que l'apprentissage automatique ?"),
    ("Recommend a good book.", "Empfiehl mir ein gutes Buch."), ("What is the meaning of life?",
                                                                 "Qual é o sentido da vida?"),
    ("How do vaccines work?", "Come funzionano i vaccini?"), ("Why is the sky blue?", "Warum ist der Himmel blau?"),
    ("How do I improve my sleep?", "¿Cómo puedo mejorar mi sueño?"),
]

CODE = [
    ("Explain `list.sort()` in Python.", "Explain `sorted()` in Python."),
    ("What does `git rebase` do?", "What does `git merge` do?"),
    ("Why does `a == b` return False?", "Why does `a is b` return False?"),
    ("Fix this: `for i in range(10): print(i)`", "Fix this: `for i in range(10) print(i)`"),
    ("What is the difference between `let` and `var`?", "What is the difference between `let` and `const`?"),
    ("Explain ```SELECT * FROM users WHERE id = 1```", "Explain ```SELECT * FROM orders WHERE id = 1```"),
    ("What does `x += 1` do?", "What does `x -= 1` do?"),
    ("Why is `malloc` slow?", "Why is `calloc` slow?"),
    ("What does `chmod 755` mean?", "What does `chmod 644` mean?"),
    ("Explain what `useEffect` does in React.", "Explain what `useMemo` does in React."),
    ("How do I use `asyncio.gather`?", "How do I use `asyncio.wait`?"),
    ("What does `df.groupby('a').sum()` do?", "What does `df.groupby('a').mean()` do?"),
    ("Explain `map(str, xs)`.", "Explain `filter(str, xs)`."),
    ("Why does `int('3.5')` fail?", "Why does `float('3.5')` fail?"),
    ("What does `docker run -d nginx` do?", "What does `docker run -it nginx` do?"),
    ("Explain the regex `^a+$`.", "Explain the regex `^a*$`."),
    ("What does `return x or y` return?", "What does `return x and y` return?"),
    ("Refactor `def add(a, b): return a + b`", "Refactor `def sub(a, b): return a - b`"),
    ("What is the output of `print(0.1 + 0.2)`?", "What is the output of `print(0.1 + 0.3)`?"),
    ("What does `kubectl get pods` do?", "What does `kubectl get nodes` do?"),
    ("How do I call get_user_by_id from the handler?", "How do I call get_user_by_name from the handler?"),
    ("What does os.path.join do?", "What does os.path.split do?"),
    ("Explain the function parseConfig.", "Explain the function parseConfigs."),
    ("Open https://example.com/docs and summarize it.", "Open https://example.com/blog and summarize it."),
    ("Summarize the article at www.example.org/a.", "Summarize the article at www.example.org/b."),
]

LOWERCASE_ENTITIES = [
    ("weather in paris tomorrow", "weather in london tomorrow"), ("cheap flights to tokyo", "cheap flights to seoul"),
    ("best pizza in naples", "best pizza in rome"), ("how far is berlin from hamburg", "how far is berlin from dresden"),
    ("who is taylor swift", "who is selena gomez"), ("iphone vs pixel camera", "iphone vs galaxy camera"),
    ("population of texas", "population of ohio"), ("time difference between boston and denver",
                                                    "time difference between boston and seattle"),
    ("history of the roman empire", "history of the ottoman empire"), ("what does nasa do", "what does esa do"),
]

QUOTES = [
    ('Translate "good morning" into French.', 'Translate "good night" into French.'),
    ('What does "carpe diem" mean?', 'What does "memento mori" mean?'),
    ('Find synonyms for "happy".', 'Find synonyms for "sad".'),
    ('Who said "I think, therefore I am"?', 'Who said "knowledge is power"?'),
    ('Is "their" or "there" correct here?', 'Is "its" or "it\'s" correct here?'),
    ("Spell-check the word 'recieve'.", "Spell-check the word 'beleive'."),
    ('Write a slogan using the word "fresh".', 'Write a slogan using the word "bold".'),
    ('What rhymes with "orange"?', 'What rhymes with "purple"?'),
    ('Count the letters in "banana".', 'Count the letters in "bandana".'),
    ('Give the plural of "mouse".', 'Give the plural of "house".'),
]

POLAR = [
    ("What is the largest planet?", "What is the smallest planet?"),
    ("What happened before the French Revolution?", "What happened after the French Revolution?"),
    ("How do I increase my credit score?", "How do I decrease my credit score?"),
    ("Sort the list in ascending order.", "Sort the list in descending order."),
    ("What is the hottest month in Spain?", "What is the coldest month in Spain?"),
    ("What is the best way to learn piano?", "What is the worst way to learn piano?"),
    ("How do I encrypt a file?", "How do I decrypt a file?"),
    ("What are the advantages of remote work?", "What are the disadvantages of remote work?"),
    ("Which is the oldest university?", "Which is the newest university?"),
    ("How do I upload a file with curl?", "How do I download a file with curl?"),
    ("What should I do today?", "What should I do tomorrow?"),
    ("How do I enable dark mode?", "How do I disable dark mode?"),
    ("What is the maximum heart rate?", "What is the minimum heart rate?"),
    ("Should I buy stocks now?", "Should I sell stocks now?"),
    ("Explain how to encode base64.", "Explain how to decode base64."),
    ("What is the first step of mitosis?", "What is the last step of mitosis?"),
    ("What are the pros of nuclear power?", "What are the cons of nuclear power?"),
    ("How do I open a port on Linux?", "How do I close a port on Linux?"),
    ("What is the fastest land animal?", "What is the slowest land animal?"),
    ("Which is the highest mountain in Europe?", "Which is the lowest point in Europe?"),
]


def pairs() -> list[Pair]:
    out: list[Pair] = []
    out += [(a, b, True, "paraphrase") for a, b in PARAPHRASES]
    for concept in CONCEPTS:
        for first, second in TEMPLATE_PAIRS:
            out.append((first.format(concept), second.format(concept), True, "paraphrase-template"))
    out += [(a, b, False, "numbers") for a, b in NUMBERS]
    for template, values in NUMBER_TEMPLATES:
        for x, y in itertools.pairwise(values):
            out.append((template.format(*x), template.format(*y), False, "numbers"))
    out += [(a, b, False, "units") for a, b in UNITS]
    for n, (u, v) in zip(itertools.cycle([5, 12, 100, 3]), UNIT_SETS, strict=False):
        out.append((UNIT_TEMPLATE.format(n, u, v), UNIT_TEMPLATE.format(n, v, u), False, "units"))
    for i, (a, b) in enumerate(itertools.permutations(CURRENCY_CODES[:7], 2)):
        template = CURRENCY_TEMPLATES[i % len(CURRENCY_TEMPLATES)]
        out.append((template.format(n=100, a=a, b=b), template.format(n=100, a=b, b=a), False, "currencies"))
    out += [(a, b, False, "entities") for a, b in ENTITIES]
    for template, names in ENTITY_TEMPLATES:
        for x, y in itertools.pairwise(names):
            out.append((template.format(x), template.format(y), False, "entities"))
    out += [(a, b, False, "entities-lowercase") for a, b in LOWERCASE_ENTITIES]
    out += [(a, b, False, "negation") for a, b in NEGATIONS]
    for food in NEGATION_FOODS:
        out.append((NEGATION_TEMPLATES[0].format(food), NEGATION_TEMPLATES[1].format(food), False, "negation"))
    out += [(a, b, False, "language") for a, b in LANGUAGES]
    out += [(a, b, False, "code") for a, b in CODE]
    out += [(a, b, False, "quotes") for a, b in QUOTES]
    out += [(a, b, False, "opposites") for a, b in POLAR]
    return out


PAIRS = pairs()

if __name__ == "__main__":
    from collections import Counter

    print(len(PAIRS), Counter(c for *_, c in PAIRS))
