"""The words the synthetic shop is made of: categories, title vocabularies, brands,
benefit phrases, countries. Data, not logic: kept apart so the generator stays readable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "AT", "BE", "PL", "SE", "IE", "PT", "DK", "FI")
COUNTRY_WEIGHTS = (24, 17, 10, 11, 12, 5, 5, 6, 3, 2, 2, 2, 1)
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_WEIGHTS = (0.6, 0.32, 0.08)
RETURN_REASONS = ("wrong_size", "damaged", "not_as_described", "changed_mind", "arrived_late")
DELIST_REASONS = ("discontinued", "supplier_change", "recalled")

PALETTE = (
    "Walnut",
    "Charcoal",
    "Sage",
    "Navy",
    "Ivory",
    "Terracotta",
    "Black",
    "White",
    "Olive",
    "Sand",
    "Slate",
    "Coral",
    "Forest Green",
    "Midnight Blue",
    "Mustard",
    "Blush",
    "Graphite",
)


@dataclass(frozen=True)
class _Leaf:
    """A leaf category and the words its product titles are made of."""

    path: str  # "Top > Sub > Leaf"
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    specs: tuple[str, ...]
    median_price: float
    tones: tuple[str, ...] = PALETTE  # the first word of a title: a colour unless overridden

    @property
    def top(self) -> str:
        return self.path.split(" > ")[0]

    @property
    def name(self) -> str:
        return self.path.split(" > ")[-1]


def _leaf(path, nouns, materials, specs, price, tones=PALETTE) -> _Leaf:
    return _Leaf(path, tuple(nouns), tuple(materials), tuple(specs), float(price), tuple(tones))


_BOOK_TONES = ("Midnight", "Silent", "Northern", "Hidden", "Golden", "Broken", "Last", "Winter")
LEAVES: tuple[_Leaf, ...] = (
    _leaf(
        "Home > Kitchen > Mugs",
        ("Coffee Mug", "Tea Cup", "Travel Mug", "Espresso Cup"),
        ("Ceramic", "Stoneware", "Porcelain", "Enamel", "Double-Wall Glass"),
        ("350ml", "450ml", "250ml", "Set of 2", "Set of 4"),
        14,
    ),
    _leaf(
        "Home > Kitchen > Cookware",
        ("Frying Pan", "Saucepan", "Dutch Oven", "Wok", "Stock Pot"),
        ("Cast Iron", "Stainless Steel", "Non-Stick", "Carbon Steel", "Copper"),
        ("24cm", "28cm", "20cm", "5L", "Induction Ready"),
        45,
    ),
    _leaf(
        "Home > Kitchen > Kitchen Knives",
        ("Chef's Knife", "Santoku Knife", "Bread Knife", "Paring Knife", "Knife Set"),
        ("Damascus Steel", "German Steel", "Ceramic", "High-Carbon"),
        ("20cm", "15cm", "with Sheath", "5-Piece"),
        40,
    ),
    _leaf(
        "Home > Kitchen > Food Storage",
        ("Storage Container", "Lunch Box", "Spice Jar", "Bread Bin"),
        ("Glass", "Bamboo", "BPA-Free Plastic", "Stainless Steel"),
        ("Set of 3", "1.2L", "Airtight", "Stackable"),
        18,
    ),
    _leaf(
        "Home > Living Room > Cushions",
        ("Throw Pillow", "Cushion Cover", "Floor Cushion"),
        ("Linen", "Velvet", "Cotton", "Boucle", "Wool"),
        ("45x45cm", "50x50cm", "60x60cm", "Set of 2"),
        22,
    ),
    _leaf(
        "Home > Living Room > Lamps",
        ("Table Lamp", "Floor Lamp", "Desk Lamp", "Pendant Light"),
        ("Brass", "Rattan", "Marble", "Matte Metal", "Oak"),
        ("LED", "Dimmable", "with USB Port", "E27"),
        60,
    ),
    _leaf(
        "Home > Living Room > Rugs",
        ("Area Rug", "Runner Rug", "Round Rug"),
        ("Jute", "Wool", "Cotton", "Shaggy"),
        ("120x170cm", "160x230cm", "80x250cm", "Washable"),
        90,
    ),
    _leaf(
        "Home > Bath > Towels",
        ("Bath Towel", "Hand Towel", "Towel Set", "Bath Mat"),
        ("Organic Cotton", "Turkish Cotton", "Waffle", "Bamboo"),
        ("70x140cm", "50x100cm", "Set of 4", "Quick Dry"),
        25,
    ),
    _leaf(
        "Fashion > Shoes > Running Shoes",
        ("Trail Running Shoes", "Road Running Shoes", "Racing Flats"),
        ("Mesh", "Knit", "Recycled"),
        ("Men's Waterproof", "Women's Lightweight", "Men's Cushioned", "Women's Wide Fit"),
        95,
    ),
    _leaf(
        "Fashion > Shoes > Sneakers",
        ("Low-Top Sneakers", "High-Top Sneakers", "Slip-On Sneakers"),
        ("Leather", "Canvas", "Suede", "Vegan Leather"),
        ("Men's", "Women's", "Unisex", "Kids'"),
        70,
    ),
    _leaf(
        "Fashion > Shoes > Boots",
        ("Chelsea Boots", "Hiking Boots", "Ankle Boots", "Winter Boots"),
        ("Leather", "Suede", "Nubuck", "Rubber"),
        ("Men's", "Women's", "Waterproof", "Insulated"),
        110,
    ),
    _leaf(
        "Fashion > Clothing > T-Shirts",
        ("Crew Neck T-Shirt", "V-Neck T-Shirt", "Graphic Tee", "Long Sleeve Tee"),
        ("Organic Cotton", "Merino", "Linen Blend", "Pima Cotton"),
        ("Men's Slim Fit", "Women's Relaxed Fit", "Unisex Regular Fit", "2-Pack"),
        20,
    ),
    _leaf(
        "Fashion > Clothing > Jackets",
        ("Rain Jacket", "Down Jacket", "Denim Jacket", "Softshell Jacket", "Fleece Jacket"),
        ("Recycled Nylon", "Waxed Cotton", "Denim", "Polyester"),
        ("Men's Hooded", "Women's Packable", "Unisex Windproof", "Women's Long"),
        120,
    ),
    _leaf(
        "Fashion > Clothing > Jeans",
        ("Slim Jeans", "Straight Jeans", "Wide Leg Jeans", "Skinny Jeans"),
        ("Stretch Denim", "Raw Denim", "Organic Denim"),
        ("Men's W32 L32", "Women's W28 L30", "High Rise", "Relaxed Fit"),
        60,
    ),
    _leaf(
        "Fashion > Clothing > Hoodies",
        ("Pullover Hoodie", "Zip Hoodie", "Crewneck Sweatshirt"),
        ("Fleece", "French Terry", "Brushed Cotton"),
        ("Men's", "Women's", "Unisex Oversized", "Kids'"),
        45,
    ),
    _leaf(
        "Fashion > Accessories > Backpacks",
        ("Laptop Backpack", "Daypack", "Rolltop Backpack", "Hiking Backpack"),
        ("Canvas", "Recycled Polyester", "Leather", "Ripstop Nylon"),
        ("20L", "28L", "35L", "15-inch Laptop"),
        65,
    ),
    _leaf(
        "Fashion > Accessories > Wallets",
        ("Bifold Wallet", "Card Holder", "Zip Wallet"),
        ("Leather", "Vegan Leather", "Canvas", "Cork"),
        ("RFID Blocking", "Slim", "with Coin Pocket"),
        30,
    ),
    _leaf(
        "Fashion > Accessories > Sunglasses",
        ("Aviator Sunglasses", "Wayfarer Sunglasses", "Round Sunglasses", "Sport Sunglasses"),
        ("Acetate", "Metal", "Bio-Based"),
        ("Polarized", "UV400", "Mirrored Lens"),
        55,
    ),
    _leaf(
        "Electronics > Audio > Headphones",
        ("Over-Ear Headphones", "Wireless Earbuds", "On-Ear Headphones"),
        ("Noise Cancelling", "Bluetooth", "Studio", "Open-Back"),
        ("40h Battery", "with Mic", "USB-C", "Foldable"),
        120,
    ),
    _leaf(
        "Electronics > Audio > Speakers",
        ("Bluetooth Speaker", "Smart Speaker", "Soundbar", "Bookshelf Speakers"),
        ("Portable", "Waterproof", "Compact", "Wooden"),
        ("20W", "IPX7", "with Subwoofer", "Stereo Pair"),
        90,
    ),
    _leaf(
        "Electronics > Computers > Keyboards",
        ("Mechanical Keyboard", "Wireless Keyboard", "Ergonomic Keyboard"),
        ("Aluminium", "Low-Profile", "Hot-Swappable", "Compact"),
        ("Brown Switches", "Red Switches", "UK Layout", "German Layout"),
        80,
    ),
    _leaf(
        "Electronics > Computers > Mice",
        ("Wireless Mouse", "Gaming Mouse", "Vertical Mouse", "Trackball"),
        ("Ergonomic", "Lightweight", "Silent"),
        ("16000 DPI", "Rechargeable", "Bluetooth", "Left-Handed"),
        35,
    ),
    _leaf(
        "Electronics > Computers > Monitors",
        ("IPS Monitor", "Curved Monitor", "Portable Monitor"),
        ("27-inch", "24-inch", "32-inch", "15.6-inch"),
        ("4K", "144Hz", "QHD", "USB-C"),
        280,
    ),
    _leaf(
        "Electronics > Phones > Phone Cases",
        ("Phone Case", "Wallet Case", "Rugged Case"),
        ("Silicone", "Leather", "Clear", "Recycled Plastic"),
        ("for iPhone 15", "for Galaxy S24", "for Pixel 8", "MagSafe Compatible"),
        18,
    ),
    _leaf(
        "Electronics > Phones > Chargers",
        ("Wall Charger", "Power Bank", "Wireless Charger", "Car Charger"),
        ("GaN", "Fast", "Compact", "Magnetic"),
        ("65W", "20000mAh", "15W", "Dual USB-C"),
        30,
    ),
    _leaf(
        "Sports & Outdoors > Camping > Tents",
        ("Dome Tent", "Backpacking Tent", "Family Tent", "Pop-Up Tent"),
        ("Ultralight", "Waterproof", "Four-Season", "Ripstop"),
        ("2-Person", "4-Person", "6-Person", "1-Person"),
        160,
    ),
    _leaf(
        "Sports & Outdoors > Camping > Sleeping Bags",
        ("Mummy Sleeping Bag", "Rectangular Sleeping Bag", "Sleeping Pad"),
        ("Down", "Synthetic", "Self-Inflating"),
        ("3-Season", "-5C Comfort", "Ultralight", "Compact"),
        85,
    ),
    _leaf(
        "Sports & Outdoors > Fitness > Yoga Mats",
        ("Yoga Mat", "Yoga Block", "Exercise Mat"),
        ("Natural Rubber", "Cork", "TPE", "Non-Slip"),
        ("6mm", "4mm", "Extra Long", "with Strap"),
        35,
    ),
    _leaf(
        "Sports & Outdoors > Fitness > Dumbbells",
        ("Adjustable Dumbbells", "Kettlebell", "Dumbbell Set", "Resistance Bands"),
        ("Cast Iron", "Neoprene", "Rubber Coated"),
        ("2x10kg", "16kg", "Set of 5", "24kg"),
        70,
    ),
    _leaf(
        "Sports & Outdoors > Cycling > Bike Helmets",
        ("Road Bike Helmet", "Mountain Bike Helmet", "Commuter Helmet"),
        ("MIPS", "Lightweight", "Ventilated"),
        ("Size M", "Size L", "with LED Light", "Adjustable"),
        65,
    ),
    _leaf(
        "Sports & Outdoors > Cycling > Bike Lights",
        ("Bike Light Set", "Front Light", "Rear Light"),
        ("USB Rechargeable", "Waterproof", "Ultra Bright"),
        ("800 Lumen", "400 Lumen", "StVZO Approved"),
        28,
    ),
    _leaf(
        "Beauty > Skincare > Moisturisers",
        ("Face Cream", "Day Moisturiser", "Night Cream", "Gel Moisturiser"),
        ("Hyaluronic", "Vitamin C", "Fragrance-Free", "Ceramide"),
        ("50ml", "75ml", "SPF 30", "for Dry Skin"),
        22,
        ("Daily", "Gentle", "Hydrating", "Rich", "Light", "Calming"),
    ),
    _leaf(
        "Beauty > Skincare > Serums",
        ("Face Serum", "Eye Serum", "Retinol Serum"),
        ("Niacinamide", "Hyaluronic Acid", "Vitamin C", "Peptide"),
        ("30ml", "15ml", "10%", "for Sensitive Skin"),
        28,
        ("Brightening", "Firming", "Renewing", "Soothing"),
    ),
    _leaf(
        "Beauty > Hair Care > Shampoo",
        ("Shampoo", "Conditioner", "Hair Mask", "Dry Shampoo"),
        ("Argan Oil", "Sulfate-Free", "Tea Tree", "Coconut"),
        ("250ml", "500ml", "Travel Size", "for Curly Hair"),
        12,
        ("Volumising", "Repairing", "Smoothing", "Clarifying"),
    ),
    _leaf(
        "Beauty > Fragrance > Perfume",
        ("Eau de Parfum", "Eau de Toilette", "Body Mist"),
        ("Floral", "Woody", "Citrus", "Amber"),
        ("50ml", "100ml", "30ml", "Gift Set"),
        65,
        ("Velvet", "Ocean", "Midnight", "Garden", "Golden"),
    ),
    _leaf(
        "Toys & Games > Games > Board Games",
        ("Strategy Board Game", "Family Board Game", "Card Game", "Party Game"),
        ("Cooperative", "Deluxe", "Travel"),
        ("2-4 Players", "Ages 8+", "Ages 12+", "Expansion Pack"),
        35,
        ("Castle", "Island", "Dragon", "Harbour", "Galaxy", "Railway"),
    ),
    _leaf(
        "Toys & Games > Building > Building Sets",
        ("Building Set", "Construction Kit", "Marble Run"),
        ("Wooden", "Magnetic", "Brick"),
        ("500 Pieces", "120 Pieces", "Ages 6+", "Starter Kit"),
        45,
        ("Castle", "Space Station", "City", "Farm", "Rocket"),
    ),
    _leaf(
        "Toys & Games > Puzzles > Jigsaw Puzzles",
        ("Jigsaw Puzzle", "3D Puzzle", "Puzzle Mat"),
        ("Landscape", "Panorama", "Illustrated"),
        ("1000 Pieces", "500 Pieces", "2000 Pieces"),
        20,
        ("Alpine", "Venice", "World Map", "Ocean", "Forest"),
    ),
    _leaf(
        "Toys & Games > Soft Toys > Plush Toys",
        ("Teddy Bear", "Plush Bunny", "Plush Dinosaur", "Cuddly Fox"),
        ("Soft", "Organic Cotton", "Weighted"),
        ("30cm", "45cm", "Baby Safe", "Mini"),
        22,
    ),
    _leaf(
        "Books > Fiction > Crime Novels",
        ("Crime Novel", "Detective Thriller", "Mystery Novel"),
        ("Paperback", "Hardcover", "Large Print"),
        ("Bestseller Edition", "Book 1 of Series", "Signed Edition"),
        14,
        _BOOK_TONES,
    ),
    _leaf(
        "Books > Fiction > Science Fiction",
        ("Science Fiction Novel", "Space Opera", "Dystopian Novel"),
        ("Paperback", "Hardcover", "Illustrated"),
        ("Anniversary Edition", "Book 2 of Trilogy", "Award Winner"),
        15,
        _BOOK_TONES,
    ),
    _leaf(
        "Books > Non-Fiction > Cookbooks",
        ("Cookbook", "Baking Book", "Vegetarian Cookbook"),
        ("Hardcover", "Spiral-Bound", "Paperback"),
        ("100 Recipes", "Family Favourites", "Quick Weeknight Meals"),
        25,
        ("Italian", "Nordic", "Japanese", "Mediterranean", "Plant-Based"),
    ),
    _leaf(
        "Books > Non-Fiction > Travel Guides",
        ("Travel Guide", "Hiking Guide", "City Guide"),
        ("Paperback", "Pocket", "Illustrated"),
        ("2024 Edition", "with Maps", "Compact Edition"),
        18,
        ("Italy", "Scandinavia", "Portugal", "Alps", "Scotland"),
    ),
    _leaf(
        "Grocery > Coffee & Tea > Coffee Beans",
        ("Coffee Beans", "Ground Coffee", "Espresso Beans", "Decaf Coffee"),
        ("Single Origin", "Organic", "Dark Roast", "Medium Roast"),
        ("1kg", "250g", "500g", "Fairtrade"),
        16,
        ("Ethiopian", "Colombian", "Brazilian", "Guatemalan", "Sumatran", "Kenyan"),
    ),
    _leaf(
        "Grocery > Coffee & Tea > Tea",
        ("Green Tea", "Black Tea", "Herbal Tea", "Chai"),
        ("Loose Leaf", "Organic", "Matcha"),
        ("100g", "20 Bags", "250g"),
        9,
        ("Jasmine", "Earl Grey", "Peppermint", "Rooibos", "Sencha"),
    ),
    _leaf(
        "Grocery > Snacks > Chocolate",
        ("Dark Chocolate", "Milk Chocolate", "Chocolate Truffles"),
        ("Single Origin", "Organic", "Sea Salt", "Hazelnut"),
        ("100g", "Gift Box", "70% Cocoa", "Pack of 5"),
        6,
        ("Belgian", "Swiss", "Ecuadorian", "Artisan"),
    ),
    _leaf(
        "Grocery > Pantry > Olive Oil",
        ("Extra Virgin Olive Oil", "Olive Oil", "Balsamic Vinegar"),
        ("Cold Pressed", "Organic", "Unfiltered"),
        ("500ml", "1L", "250ml", "3L Tin"),
        14,
        ("Greek", "Italian", "Spanish", "Tuscan", "Cretan"),
    ),
    _leaf(
        "Grocery > Pantry > Pasta",
        ("Spaghetti", "Penne", "Fusilli", "Tagliatelle"),
        ("Durum Wheat", "Whole Wheat", "Gluten-Free", "Bronze Cut"),
        ("500g", "1kg", "Pack of 4"),
        4,
        ("Italian", "Artisan", "Organic", "Classic"),
    ),
    _leaf(
        "Pets > Dogs > Dog Food",
        ("Dry Dog Food", "Wet Dog Food", "Dog Treats"),
        ("Grain-Free", "Salmon", "Chicken", "Lamb"),
        ("12kg", "2kg", "Adult", "Puppy"),
        40,
        ("Premium", "Natural", "Senior", "Active"),
    ),
    _leaf(
        "Pets > Dogs > Dog Toys",
        ("Chew Toy", "Rope Toy", "Squeaky Ball", "Puzzle Feeder"),
        ("Natural Rubber", "Cotton", "Durable"),
        ("Large", "Medium", "Small", "Set of 3"),
        12,
    ),
    _leaf(
        "Pets > Dogs > Dog Beds",
        ("Orthopedic Dog Bed", "Donut Dog Bed", "Dog Crate Mat"),
        ("Memory Foam", "Plush", "Waterproof"),
        ("Large", "Medium", "XL", "Washable Cover"),
        55,
    ),
    _leaf(
        "Pets > Cats > Cat Litter",
        ("Clumping Cat Litter", "Cat Litter Box", "Litter Mat"),
        ("Clay", "Tofu", "Silica", "Wood Pellet"),
        ("10L", "Unscented", "Hooded", "Odour Control"),
        15,
    ),
    _leaf(
        "Pets > Cats > Cat Trees",
        ("Cat Tree", "Scratching Post", "Cat Shelf"),
        ("Sisal", "Plush", "Wooden"),
        ("120cm", "80cm", "Wall-Mounted", "Multi-Level"),
        50,
    ),
    _leaf(
        "Garden > Plants > Indoor Plants",
        ("Monstera", "Snake Plant", "Fiddle Leaf Fig", "Pothos"),
        ("Potted", "Live", "Low-Light"),
        ("Small", "Medium", "Large", "in Ceramic Pot"),
        25,
        ("Variegated", "Classic", "Mini", "Tall"),
    ),
    _leaf(
        "Garden > Plants > Seeds",
        ("Tomato Seeds", "Herb Seeds", "Wildflower Seeds", "Chilli Seeds"),
        ("Heirloom", "Organic", "Non-GMO"),
        ("Pack of 50", "Seed Kit", "10 Varieties"),
        5,
        ("Cherry", "Mediterranean", "Meadow", "Hot"),
    ),
    _leaf(
        "Garden > Tools > Garden Tools",
        ("Pruning Shears", "Garden Trowel", "Hedge Trimmer", "Garden Hose", "Rake"),
        ("Stainless Steel", "Carbon Steel", "Ash Wood", "Cordless"),
        ("Ergonomic", "20m", "Heavy Duty", "Lifetime Warranty"),
        30,
    ),
    _leaf(
        "Garden > Outdoor > Garden Furniture",
        ("Bistro Set", "Sun Lounger", "Garden Bench", "Hammock"),
        ("Acacia Wood", "Teak", "Aluminium", "Rattan"),
        ("2-Seater", "Foldable", "Weatherproof", "with Cushions"),
        180,
    ),
)

BRANDS: dict[str, tuple[str, ...]] = {
    "Home": ("Nordhaven", "Lumen & Oak", "Hearthstone", "Casa Verde", "Kitchenly", "Mossgrove"),
    "Fashion": (
        "Kestrel",
        "Urban Fable",
        "Alpenglow",
        "Northline",
        "Velora",
        "Stride Lab",
        "Marlowe",
    ),
    "Electronics": (
        "Voltaire Audio",
        "Pixelforge",
        "Brightline",
        "Synthwave",
        "Arcadia Tech",
        "Clearsound",
    ),
    "Sports & Outdoors": (
        "Alpenglow",
        "Summit Supply",
        "Trailcraft",
        "Peakform",
        "Ridgeback",
        "Velocity",
    ),
    "Beauty": ("Lumiere", "Dewdrop", "Botanica", "Pure Ritual", "Silk & Stone"),
    "Toys & Games": ("Brickwise", "Tinker Town", "Meeple House", "Happy Otter", "Puzzlecraft"),
    "Books": (
        "Inkwell Press",
        "Harbour Books",
        "Lantern House",
        "Penwright",
        "Northstar Publishing",
    ),
    "Grocery": (
        "Bean Republic",
        "Olive Grove Co",
        "Cacao Collective",
        "Leaf & Kettle",
        "Pasta Nonna",
    ),
    "Pets": ("Happy Paws", "Whisker Co", "Barkley", "Furrow & Field", "Tailwag"),
    "Garden": ("Greenthumb", "Rootstock", "Fern & Fig", "Meadowlark", "Casa Verde"),
}
BENEFITS: dict[str, tuple[str, ...]] = {
    "Home": (
        "built for everyday use",
        "easy to clean",
        "designed to last for years",
        "a warm touch for any room",
    ),
    "Fashion": (
        "comfortable from morning to night",
        "made to move with you",
        "easy to style",
        "cut for a modern fit",
    ),
    "Electronics": (
        "with a two-year warranty",
        "set up in minutes",
        "tuned for clear, reliable performance",
        "compact enough for any desk",
    ),
    "Sports & Outdoors": (
        "tested in all weather",
        "light enough for long days out",
        "built for training and trails",
        "packs down small",
    ),
    "Beauty": (
        "dermatologically tested",
        "suitable for daily use",
        "free from parabens",
        "made with natural ingredients",
    ),
    "Toys & Games": (
        "hours of fun for the whole family",
        "safety tested",
        "a great gift",
        "encourages creative play",
    ),
    "Books": (
        "a gripping read",
        "loved by readers across Europe",
        "beautifully bound",
        "perfect for a weekend away",
    ),
    "Grocery": (
        "sourced from small producers",
        "freshly packed",
        "rich and full of flavour",
        "a pantry favourite",
    ),
    "Pets": (
        "vet approved",
        "loved by pets and owners alike",
        "built to survive enthusiastic play",
        "made with natural ingredients",
    ),
    "Garden": (
        "ready for the garden season",
        "weatherproof and durable",
        "easy to care for",
        "made from sustainable materials",
    ),
}
TOPS: tuple[str, ...] = tuple(dict.fromkeys(leaf.top for leaf in LEAVES))
TOP_WEIGHTS = np.array([14, 18, 12, 10, 8, 7, 6, 9, 8, 8], dtype=float)  # overall demand per top
