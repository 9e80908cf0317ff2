"""Word lists for the "likes" vocabulary of the LIMIT-style generator (written for this project).

Attributes are short Title Case phrases (plural for countable things, as in "X likes Tapirs");
none contains a comma or the word "and", so a document's list parses back unambiguously.
People's names are a first name plus a surname built from syllables, which gives ~100k distinct
names without a list of real surnames, and keeps name words away from attribute words.

>>> len(ATTRIBUTES) >= 500, len(set(ATTRIBUTES)) == len(ATTRIBUTES)
(True, True)
>>> len(FIRST_NAMES) * len(SURNAME_HEADS) * len(SURNAME_TAILS) > 100_000
True
"""
from __future__ import annotations

_GROUPS = {
    "animals": """Tapirs, Quokkas, Pangolins, Axolotls, Capybaras, Narwhals, Okapis, Wombats, Lemurs,
        Meerkats, Armadillos, Aardvarks, Platypuses, Manatees, Walruses, Puffins, Pelicans, Flamingos,
        Toucans, Hummingbirds, Kingfishers, Herons, Cormorants, Albatrosses, Penguins, Ostriches,
        Emus, Cassowaries, Peacocks, Parakeets, Cockatoos, Owls, Falcons, Vultures, Condors, Ravens,
        Magpies, Starlings, Sparrows, Woodpeckers, Chameleons, Geckos, Iguanas, Komodo Dragons,
        Tortoises, Sea Turtles, Alligators, Crocodiles, Salamanders, Tree Frogs, Seahorses, Octopuses,
        Squids, Jellyfish, Starfish, Sea Urchins, Lobsters, Hermit Crabs, Barnacles, Stingrays,
        Hammerhead Sharks, Orcas, Dolphins, Humpback Whales, Otters, Beavers, Badgers, Hedgehogs,
        Porcupines, Raccoons, Skunks, Chipmunks, Squirrels, Hamsters, Ferrets, Foxes, Wolves,
        Coyotes, Jackals, Hyenas, Cheetahs, Leopards, Jaguars, Lynxes, Ocelots, Pumas, Tigers,
        Lions, Bison, Yaks, Camels, Llamas, Alpacas, Giraffes, Zebras, Rhinos, Hippos, Elephants,
        Gorillas, Orangutans, Baboons, Gibbons, Sloths, Anteaters, Koalas, Kangaroos, Wallabies,
        Moths, Butterflies, Dragonflies, Fireflies, Ladybugs, Beetles, Crickets, Mantises, Bees,
        Scorpions, Tarantulas, Snails, Earthworms, Goldfish, Salmon, Trout, Catfish, Eels""",
    "plants": """Sunflowers, Tulips, Orchids, Daffodils, Peonies, Marigolds, Lavender, Magnolias,
        Camellias, Azaleas, Begonias, Geraniums, Carnations, Dahlias, Poppies, Snapdragons, Lotus,
        Water Lilies, Cacti, Succulents, Ferns, Mosses, Bonsai, Bamboo, Oak Trees, Maple Trees,
        Birch Trees, Willow Trees, Redwoods, Sequoias, Baobabs, Palm Trees, Pine Cones, Cypress Trees,
        Ivy, Clover, Dandelions, Thistles, Venus Flytraps, Mushrooms, Lichens, Seaweed""",
    "foods": """Pancakes, Waffles, Croissants, Bagels, Sourdough, Pretzels, Dumplings, Ramen, Sushi,
        Tacos, Burritos, Enchiladas, Lasagna, Risotto, Gnocchi, Paella, Falafel, Hummus, Kimchi,
        Curry, Biryani, Samosas, Noodles, Omelettes, Quiche, Fondue, Goulash, Borscht, Chowder,
        Gumbo, Meatballs, Pizza, Hamburgers, Hot Dogs, Fried Chicken, Popcorn, Nachos, Guacamole,
        Salsa, Pickles, Olives, Artichokes, Asparagus, Broccoli, Cauliflower, Brussels Sprouts,
        Spinach, Kale, Beets, Radishes, Turnips, Parsnips, Zucchini, Eggplants, Pumpkins, Squash,
        Sweet Potatoes, Lentils, Chickpeas, Tofu, Tempeh, Quinoa, Oatmeal, Granola, Yogurt, Cheddar,
        Brie, Gouda, Mozzarella, Feta, Butter, Honey, Maple Syrup, Peanut Butter, Chocolate,
        Caramel, Marzipan, Licorice, Gummy Bears, Cupcakes, Brownies, Cheesecake, Tiramisu,
        Macarons, Donuts, Churros, Baklava, Gelato, Sorbet, Apples, Pears, Peaches, Plums, Cherries,
        Apricots, Mangoes, Papayas, Pineapples, Coconuts, Kiwis, Lychees, Pomegranates, Figs, Dates,
        Blueberries, Raspberries, Strawberries, Cranberries, Watermelons, Cantaloupes, Grapefruit,
        Tangerines, Limes, Lemons, Cinnamon, Nutmeg, Saffron, Paprika, Wasabi, Soy Sauce, Mustard,
        Vinegar, Garlic, Shallots, Chili Peppers, Almonds, Cashews, Pistachios, Walnuts, Hazelnuts""",
    "drinks": """Espresso, Cappuccino, Green Tea, Chai, Matcha, Kombucha, Lemonade, Root Beer,
        Hot Cocoa, Smoothies, Milkshakes, Orange Juice, Sparkling Water, Cider, Eggnog""",
    "hobbies": """Knitting, Crocheting, Quilting, Embroidery, Pottery, Woodworking, Origami,
        Calligraphy, Scrapbooking, Candle Making, Soap Making, Beekeeping, Birdwatching, Stargazing,
        Gardening, Foraging, Fishing, Camping, Hiking, Backpacking, Geocaching, Kayaking, Canoeing,
        Sailing, Surfing, Snorkeling, Scuba Diving, Rock Climbing, Bouldering, Skydiving,
        Paragliding, Hot Air Ballooning, Skateboarding, Rollerblading, Ice Skating, Snowboarding,
        Sledding, Jigsaw Puzzles, Crosswords, Sudoku, Chess, Checkers, Backgammon, Mahjong, Poker,
        Board Games, Video Games, Card Tricks, Juggling, Ventriloquism, Magic Shows, Karaoke,
        Ballroom Dancing, Tap Dancing, Salsa Dancing, Yoga, Pilates, Meditation, Journaling,
        Podcasts, Photography, Filmmaking, Stamp Collecting, Coin Collecting, Model Trains,
        Kite Flying, Metal Detecting, Genealogy, Baking, Grilling, Fermenting, Cheese Making,
        Wine Tasting, Bread Baking, Traveling, Road Trips, Thrift Shopping, Antique Shopping""",
    "sports": """Soccer, Basketball, Baseball, Volleyball, Tennis, Badminton, Table Tennis, Squash
        Courts, Golf, Cricket, Rugby, Lacrosse, Field Hockey, Ice Hockey, Water Polo, Fencing,
        Archery, Boxing, Wrestling, Judo, Karate, Taekwondo, Rowing, Cycling, Marathons, Triathlons,
        Sprinting, Pole Vaulting, High Jumping, Gymnastics, Diving Boards, Curling, Bobsledding,
        Polo, Bowling, Billiards, Darts, Frisbee, Dodgeball, Handball""",
    "music": """Jazz, Blues, Reggae, Ska, Punk Rock, Heavy Metal, Alternative Rock, Grunge, Hip Hop,
        Opera, Symphonies, Chamber Music, Baroque Music, Bluegrass, Gospel, Disco Music, Techno,
        Synthpop, Lullabies, Sea Shanties, Barbershop Quartets, Acapella, Mariachi, Flamenco, Tango,
        Polka, Bossa Nova, Samba, Violins, Cellos, Harps, Flutes, Clarinets, Oboes, Bassoons,
        Saxophones, Trumpets, Trombones, Tubas, French Horns, Bagpipes, Accordions, Harmonicas,
        Banjos, Mandolins, Ukuleles, Sitars, Xylophones, Marimbas, Glockenspiels, Tambourines,
        Bongos, Timpani, Pianos, Harpsichords, Pipe Organs, Synthesizers, Theremins""",
    "arts": """Fables, Sonnets, Haiku, Limericks, Mythology, Fairy Tales, Horror Literature,
        Science Fiction, Fantasy Novels, Mystery Novels, Detective Stories, Graphic Novels, Comics,
        Manga, Anime, Cartoons, Documentaries, Silent Films, Westerns, Musicals, Ballet, Puppetry,
        Pantomime, Stand-up Comedy, Improv Theater, Mosaic, Frescoes, Watercolors, Oil Painting,
        Charcoal Sketches, Sculpture, Stained Glass, Tapestries, Murals, Graffiti, Architecture,
        Cathedrals, Lighthouses, Windmills, Castles, Pyramids, Skyscrapers, Bridges, Typography""",
    "science": """Astronomy, Astrophysics, Black Holes, Comets, Meteor Showers, Nebulae, Galaxies,
        Eclipses, Auroras, Rainbows, Thunderstorms, Tornadoes, Hurricanes, Blizzards, Fog, Volcanoes,
        Geysers, Glaciers, Icebergs, Fjords, Canyons, Deserts, Sand Dunes, Oases, Rainforests,
        Mangroves, Wetlands, Coral Reefs, Tide Pools, Oceanic Trenches, Waterfalls, Caves,
        Stalactites, Fossils, Dinosaurs, Trilobites, Mammoths, Geology, Meteorology, Botany,
        Zoology, Entomology, Ornithology, Oceanography, Chemistry, Algebra, Geometry, Calculus,
        Prime Numbers, Fractals, Topology, Cryptography, Robotics, Rocketry, Cartography, Logic
        Puzzles, Magnets, Prisms, Telescopes, Microscopes, Hourglasses, Sundials, Compasses,
        Slide Rules, Abacuses, Typewriters, Gramophones, Vinyl Records, Cassette Tapes, Polaroids,
        Pocket Watches, Fountain Pens, Notebooks, Maps, Globes, Postcards, Lanterns, Candles,
        Umbrellas, Scarves, Mittens, Sweaters, Sneakers, Hats, Sunglasses, Backpacks, Bicycles,
        Motorcycles, Sailboats, Steam Trains, Zeppelins, Submarines, Hammocks, Quilts, Teapots""",
    "gems": """Sapphires, Emeralds, Rubies, Diamonds, Opals, Garnets, Topaz, Turquoise, Amethysts,
        Obsidian, Quartz, Granite, Marble, Copper, Bronze, Silver, Gold Leaf, Porcelain, Velvet,
        Silk, Linen, Denim, Tweed""",
    "ideas": """Asymmetry, Symmetry, Patterns, Minimalism, Creativity, Nostalgia, Solitude,
        Philosophy, Stoicism, Ethics, Linguistics, Etymology, Palindromes, Riddles, Trivia,
        Ancient Rome, Ancient Egypt, The Aztec Empire, The Renaissance, The Vikings, The Silk Road,
        Medieval History, The Industrial Revolution, Space Exploration, The Moon Landing""",
}

ATTRIBUTES: list[str] = list(dict.fromkeys(
    a.strip() for group in _GROUPS.values() for a in " ".join(group.split()).split(",") if a.strip()))

FIRST_NAMES = """Ada Alden Alma Anders Anika Arlo Astrid Bertram Bettina Bram Cecil Celeste Clement
    Cora Corin Dagny Dalia Damon Delphine Desmond Dorian Edda Edmund Elio Elspeth Emeric Enid Esme
    Ezra Fenna Florian Freya Gideon Greta Gunnar Halvard Hedda Helga Idris Ilse Imre Ingrid Isolde
    Ivo Jorah Judith Kasimir Katya Lazlo Leona Linnea Lionel Lorcan Lucian Lydia Magnus Malin Marek
    Mathilde Milo Mirela Nadia Nestor Nico Noor Oda Odile Orla Oswin Otto Petra Priya Quentin Ragna
    Reuben Rosalind Rufus Saskia Selma Silas Solveig Stellan Sunniva Tamsin Teodor Thea Tobias Ulla
    Ursula Valdis Vera Viggo Wendell Wilma Xenia Yara Yusuf Zelda Zoltan""".split()

SURNAME_HEADS = """Abern Ald Ash Bal Bran Brock Carr Coll Dal Dorn Elk Ell Fair Farr Gal Garn Hal
    Hart Hol Ing Jarv Kell Kend Lang Lind Mar Mell Nor Orm Pell Quill Rad Roth Sand Stam Thorn Tull
    Vand Wend Yarr""".split()

SURNAME_TAILS = """ford wick ston ley more bury croft by ton well mont sen din ett ola quist strom
    gard hurst lowe berg ham field worth dale vik""".split()

# Consonants only in the letter part, so a symbol never spells an English word.
GENE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"
