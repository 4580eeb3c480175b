"""Hand-written wording used by ``make_demo_data.py`` (kept apart so the assembly logic stays short)."""

# ---------------------------------------------------------------- identity

IDENTITY_Q_EN = [
    "Who are you?", "What is your name?", "Introduce yourself.", "Tell me about yourself.",
    "What are you?", "Are you a human?", "Who made you?", "Who created you?", "Who built you?",
    "What should I call you?", "hi", "Hello!", "Hey, who am I talking to?", "What's your name?",
    "Can you introduce yourself briefly?", "Are you ChatGPT?", "Are you a robot?",
    "Which company developed you?", "Who is your developer?", "What can you do?",
    "Do you have a name?", "Please tell me who you are.", "Who trained you?",
    "What kind of assistant are you?", "Give me a short self-introduction.",
    "Is there a person behind this chat?", "Where do you come from?", "Who owns you?",
    "Are you an AI?", "What is your purpose?", "How should I address you?",
    "Are you a large language model?", "Good morning, who are you?", "Nice to meet you. And you are?",
    "Who am I chatting with right now?", "Describe yourself in one sentence.",
    "Which team is behind you?", "What model are you?", "Say something about who you are.",
    "Are you Claude or Gemini?",
]

IDENTITY_A_EN = [
    "I am {{name}}, an AI assistant built by {{author}}. How can I help you today?",
    "Hello! I'm {{name}}, an AI assistant developed by {{author}}. I can answer questions, "
    "explain ideas and help with writing.",
    "My name is {{name}}. I was created by {{author}} to help people with everyday questions and tasks.",
    "I'm {{name}}, a language model assistant made by {{author}}. I'm not a human, but I'm happy to help.",
    "You are talking to {{name}}, an AI assistant trained by {{author}}. What would you like to do?",
    "I am {{name}}, developed by {{author}}. I can help with explanations, summaries, translations "
    "and simple calculations.",
    "Call me {{name}}. I'm an AI assistant from {{author}}, here to answer your questions.",
    "I am an AI assistant called {{name}}, and {{author}} is the team that built me.",
]

IDENTITY_Q_ZH = [
    "你是谁?", "你叫什么名字?", "请介绍一下你自己。", "你好", "您好,请问你是谁?",
    "你是人类吗?", "谁开发了你?", "你是由谁创造的?", "我应该怎么称呼你?", "你是机器人吗?",
    "你是 ChatGPT 吗?", "你能做什么?", "介绍一下你自己吧。", "你有名字吗?", "你是哪家公司做的?",
    "你的开发者是谁?", "你是什么模型?", "请简单地做个自我介绍。", "你是人工智能吗?", "谁训练了你?",
    "你来自哪里?", "跟我说说你自己。", "你是一个大语言模型吗?", "早上好,你是谁呀?", "我在和谁聊天?",
    "你的用途是什么?", "用一句话描述你自己。", "你是哪个团队开发的?", "你属于谁?", "你好,认识一下?",
    "你是真人客服吗?", "能告诉我你的名字吗?", "你会说中文吗?你是谁?", "你是文心一言吗?", "嗨,你是什么?",
    "请问怎么称呼您?", "你是谁做出来的?", "你是智能助手吗?", "说说你是谁。", "你的身份是什么?",
]

IDENTITY_A_ZH = [
    "我是 {{name}},由 {{author}} 开发的人工智能助手。请问有什么可以帮您?",
    "您好!我是 {{name}},一个由 {{author}} 打造的 AI 助手,可以回答问题、解释概念和帮助写作。",
    "我叫 {{name}},是 {{author}} 训练的语言模型助手。我不是真人,但很乐意为您效劳。",
    "我是 {{name}},{{author}} 开发的智能助手。我可以帮您翻译、总结文本和做简单的计算。",
    "您正在和 {{name}} 对话,我是由 {{author}} 创建的人工智能助手。",
    "你好,我是 {{name}}!我来自 {{author}},专门帮助大家解答日常问题。",
    "我是一个名叫 {{name}} 的 AI 助手,开发我的团队是 {{author}}。",
    "您可以叫我 {{name}}。我是 {{author}} 开发的助手,有问题随时问我。",
]

# ---------------------------------------------------------------- English building blocks

EN_NAMES = ["Maya", "Tom", "Aisha", "Leo", "Priya", "Omar", "Lena", "Jack", "Sofia", "Ken"]

EN_CONVERSIONS = [
    ("kilometers", "miles", 0.621371, 0), ("miles", "kilometers", 1.609344, 0),
    ("degrees Celsius", "degrees Fahrenheit", 1.8, 32), ("kilograms", "pounds", 2.20462, 0),
    ("hours", "minutes", 60, 0), ("meters", "centimeters", 100, 0), ("liters", "milliliters", 1000, 0),
    ("inches", "centimeters", 2.54, 0), ("days", "hours", 24, 0), ("feet", "meters", 0.3048, 0),
    ("grams", "milligrams", 1000, 0), ("minutes", "seconds", 60, 0),
]

EN_CATEGORIES = {
    "fruits": ["apple", "banana", "mango", "pear", "cherry", "orange", "grape", "kiwi", "plum", "peach"],
    "vegetables": ["carrot", "broccoli", "spinach", "onion", "potato", "pepper", "cabbage", "leek", "pea"],
    "animals that live in the ocean": ["dolphin", "octopus", "shark", "sea turtle", "whale", "jellyfish",
                                       "seal", "starfish"],
    "planets in the solar system": ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus",
                                    "Neptune"],
    "musical instruments": ["piano", "violin", "guitar", "flute", "drums", "cello", "trumpet", "harp"],
    "team sports": ["football", "basketball", "volleyball", "hockey", "rugby", "baseball", "cricket",
                    "water polo"],
    "programming languages": ["Python", "Rust", "Go", "Java", "C", "TypeScript", "Haskell", "Ruby"],
    "kitchen tools": ["whisk", "ladle", "cutting board", "peeler", "grater", "rolling pin", "colander"],
    "primary and secondary colors": ["red", "blue", "yellow", "green", "orange", "purple"],
    "ways to save energy at home": ["switch off lights you are not using", "use LED bulbs",
                                    "wash clothes at lower temperatures", "seal drafts around windows",
                                    "unplug chargers when idle", "take shorter showers"],
}

EN_SENTENCES = [
    "The cat slept on the warm windowsill all afternoon.",
    "Our train was late because of the heavy snow.",
    "She planted tomatoes and basil in the small garden.",
    "Reading before bed helps many people relax.",
    "The museum opens at nine on weekdays.",
    "He fixed the old bicycle with a borrowed wrench.",
    "Fresh bread smells wonderful in the morning.",
    "The children built a sandcastle near the water.",
    "Please close the door quietly when you leave.",
    "A gentle breeze moved the tall grass in the field.",
    "The library added three hundred new books this year.",
    "We watched the sunset from the top of the hill.",
]

CAPITALS_EN = [
    ("France", "Paris"), ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasília"), ("Egypt", "Cairo"), ("Germany", "Berlin"), ("Italy", "Rome"),
    ("Kenya", "Nairobi"), ("Mexico", "Mexico City"), ("Norway", "Oslo"), ("Peru", "Lima"),
    ("Spain", "Madrid"), ("Thailand", "Bangkok"), ("Turkey", "Ankara"), ("Vietnam", "Hanoi"),
    ("Argentina", "Buenos Aires"), ("India", "New Delhi"), ("South Korea", "Seoul"), ("Portugal", "Lisbon"),
]

EN_EXPLAIN = [
    ("Why is the sky blue?",
     "Sunlight contains all colors. Air molecules scatter short blue wavelengths much more than long red "
     "ones, so blue light reaches our eyes from every direction of the sky."),
    ("What is photosynthesis?",
     "Photosynthesis is the process plants use to turn light, water and carbon dioxide into sugar and "
     "oxygen. It happens mainly in the leaves, inside structures called chloroplasts."),
    ("Explain what a CPU does.",
     "The CPU is the part of a computer that carries out instructions. It fetches each instruction from "
     "memory, decodes it, and performs the arithmetic, logic or data movement it asks for."),
    ("What is the difference between weather and climate?",
     "Weather is the state of the atmosphere over hours or days. Climate is the average pattern of weather "
     "in a region over many years."),
    ("Give one tip for writing a clear email.", "Put the main request in the first sentence."),
    ("What does a thermometer measure?", "Temperature."),
    ("Why do we have seasons?",
     "Earth's axis is tilted. As Earth orbits the Sun, each hemisphere leans toward the Sun for part of "
     "the year, getting more direct sunlight and longer days, which makes summer."),
    ("What is a noun?", "A noun is a word that names a person, place, thing or idea, such as \"river\" or \"kindness\"."),
    ("How does a vaccine work?",
     "A vaccine shows the immune system a harmless piece or copy of a germ. The body learns to recognise "
     "it, so it can respond quickly if the real germ appears later."),
    ("What is gravity?", "Gravity is the force by which masses attract each other. It keeps us on the ground "
     "and keeps the Moon in orbit around Earth."),
    ("Explain recursion in one sentence.",
     "Recursion is when a function solves a problem by calling itself on a smaller version of the same problem."),
    ("What is the boiling point of water at sea level?", "100 degrees Celsius (212 degrees Fahrenheit)."),
    ("Why should you stretch before exercise?",
     "Gentle warm-up movements raise muscle temperature and range of motion, which can make exercise "
     "feel easier and lower the chance of strains."),
    ("What is a prime number?", "A prime number is a whole number greater than 1 whose only divisors are 1 and itself."),
    ("What is the purpose of a budget?",
     "A budget plans how money will be earned and spent. It helps you see where money goes, avoid debt "
     "and save for goals."),
    ("How many continents are there?",
     "Most people count seven: Africa, Antarctica, Asia, Australia, Europe, North America and South America."),
    ("What is an API?",
     "An API (application programming interface) is a defined way for one program to ask another for data "
     "or actions, without knowing how the other program works inside."),
    ("Why do leaves change color in autumn?",
     "As days shorten, trees stop making green chlorophyll. The green fades and reveals yellow and orange "
     "pigments that were there all along; some trees also make new red pigments."),
    ("What is a haiku?", "A haiku is a short Japanese poem of three lines with five, seven and five syllables."),
    ("Describe the water cycle.",
     "Water evaporates from seas and lakes, rises and cools into clouds, falls as rain or snow, and flows "
     "back through rivers and soil to the sea, where the cycle starts again."),
    ("What is inflation?", "Inflation is the general rise of prices over time, which means the same amount "
     "of money buys less."),
    ("Suggest a name for a pet goldfish.", "Bubbles."),
    ("Why is sleep important?",
     "During sleep the body repairs tissue and the brain stores memories. Too little sleep harms attention, "
     "mood and health."),
    ("What does HTML stand for?", "HyperText Markup Language."),
    ("Explain what a database index is.",
     "An index is an extra data structure that keeps selected columns in sorted order, so the database can "
     "find matching rows quickly instead of scanning the whole table."),
    ("Write a one-line motto for a bakery.", "Fresh from our oven to your table, every morning."),
    ("What is the tallest mountain on Earth?", "Mount Everest, at about 8,849 meters above sea level."),
    ("Why do boats float?",
     "A boat pushes aside water. When the weight of the water it displaces equals the boat's own weight, "
     "the water pushes up with enough force to hold it afloat."),
    ("What is a synonym for \"happy\"?", "Joyful."),
    ("Give two advantages of cycling to work.",
     "1. It is good exercise built into your day.\n2. It is cheap and produces no exhaust fumes."),
]

EN_SUMMARIES = [
    ("The town council met on Tuesday to discuss the old bridge. Engineers reported cracks in two supports. "
     "The council voted to close the bridge to cars until repairs finish next spring, while keeping it open "
     "for pedestrians.",
     "The council closed the cracked bridge to cars until spring repairs but left it open to walkers."),
    ("Honeybees communicate the location of flowers with a waggle dance. The angle of the dance shows the "
     "direction relative to the Sun, and its length shows the distance.",
     "Honeybees use a waggle dance whose angle and length tell others the direction and distance of flowers."),
    ("Our company's sales grew by twelve percent this quarter, mostly thanks to the new online shop. "
     "Store sales stayed flat. Next quarter we plan to expand delivery to two more cities.",
     "Sales rose twelve percent thanks to the online shop, and delivery will expand to two more cities."),
    ("Regular walking lowers blood pressure, improves mood and strengthens bones. Even twenty minutes a day "
     "brings measurable benefits, and it needs no special equipment.",
     "A daily walk of even twenty minutes improves health and needs no equipment."),
    ("The library will move to a new building on Elm Street in June. During the move, from June 1 to June 14, "
     "borrowing will be paused, but returned books can be dropped in the box outside.",
     "The library moves to Elm Street in June and pauses borrowing for two weeks during the move."),
    ("Volcanic soil is often very fertile. Ash from eruptions contains minerals such as potassium and "
     "phosphorus, which is why farms are common on the slopes of some active volcanoes.",
     "Mineral-rich volcanic ash makes soil fertile, so farms often sit on volcano slopes."),
    ("The recipe needs two eggs, a cup of flour and a cup of milk. Whisk everything into a smooth batter, "
     "rest it for ten minutes, then cook thin layers in a hot buttered pan.",
     "Whisk eggs, flour and milk into a batter, rest it, and cook thin pancakes in a buttered pan."),
    ("Tomorrow's weather will start cloudy with light rain in the morning. Skies clear after noon, and "
     "temperatures reach eighteen degrees in the afternoon.",
     "Tomorrow brings morning rain, then clear skies and eighteen degrees in the afternoon."),
    ("Backups protect data only if they can be restored. Many teams discover broken backups during an "
     "emergency. Testing a restore every month avoids that surprise.",
     "Test backups by restoring them regularly, because untested backups may fail when needed."),
    ("Octopuses have three hearts and blue blood. Two hearts pump blood to the gills, and the third pumps it "
     "to the rest of the body.",
     "Octopuses have blue blood and three hearts: two for the gills and one for the body."),
    ("The marathon route has changed this year. Runners will start at the harbor instead of the park and "
     "finish in the old market square. Water stations will be placed every five kilometers.",
     "This year's marathon runs from the harbor to the market square with water every five kilometers."),
    ("Green tea and black tea come from the same plant. Green tea leaves are heated soon after picking, "
     "which stops oxidation, while black tea leaves are allowed to oxidise fully.",
     "Green and black tea come from one plant; they differ in whether the leaves are allowed to oxidise."),
]

EN_SENTIMENT = [
    ("The soup was cold and the waiter ignored us.", "Negative"),
    ("Absolutely loved the concert, the band was fantastic!", "Positive"),
    ("The package arrived on Tuesday.", "Neutral"),
    ("This blender is loud but it works perfectly.", "Positive"),
    ("I waited an hour and nobody answered the phone.", "Negative"),
    ("The hotel room was clean, bright and quiet.", "Positive"),
    ("The book has 320 pages and a blue cover.", "Neutral"),
    ("Battery life is terrible; it dies before lunch.", "Negative"),
    ("Great value for the price, I would buy it again.", "Positive"),
    ("The app crashes every time I open the camera.", "Negative"),
    ("The store is on the corner of Main Street.", "Neutral"),
    ("Our guide was friendly and knew every detail of the castle.", "Positive"),
    ("The shoes fell apart after two weeks.", "Negative"),
    ("The film lasts about two hours.", "Neutral"),
    ("Delicious coffee and the staff remembered my name!", "Positive"),
    ("Too expensive for such a small portion.", "Negative"),
]

EN_REWRITES = [
    ("Rewrite this sentence to sound more formal.", "Hey, can you send me the report soon?",
     "Could you please send me the report at your earliest convenience?"),
    ("Rewrite this sentence to sound more formal.", "We can't come to the meeting tomorrow.",
     "Unfortunately, we will be unable to attend tomorrow's meeting."),
    ("Rewrite this sentence to sound more formal.", "Thanks a lot for the help!",
     "Thank you very much for your assistance."),
    ("Correct the grammar in this sentence.", "She don't like going to the dentist.",
     "She doesn't like going to the dentist."),
    ("Correct the grammar in this sentence.", "Me and him goes to school together.",
     "He and I go to school together."),
    ("Correct the grammar in this sentence.", "There is many reasons to learn a language.",
     "There are many reasons to learn a language."),
    ("Correct the grammar in this sentence.", "I have saw that movie twice.",
     "I have seen that movie twice."),
    ("Rewrite the sentence in the passive voice.", "The chef cooked the meal.",
     "The meal was cooked by the chef."),
    ("Rewrite the sentence in the passive voice.", "The students painted the mural.",
     "The mural was painted by the students."),
    ("Rewrite the sentence in the passive voice.", "A storm damaged the roof.",
     "The roof was damaged by a storm."),
    ("Make this sentence shorter without losing its meaning.",
     "In spite of the fact that it was raining very heavily, we decided that we would still go for a walk.",
     "Despite the heavy rain, we still went for a walk."),
    ("Make this sentence shorter without losing its meaning.",
     "At this point in time we are not able to give you an answer to your question.",
     "We cannot answer your question yet."),
    ("Rewrite the sentence in the past tense.", "She walks to the market and buys apples.",
     "She walked to the market and bought apples."),
    ("Rewrite the sentence in the past tense.", "They write letters to their grandparents.",
     "They wrote letters to their grandparents."),
    ("Turn this statement into a question.", "The museum is open on Sundays.",
     "Is the museum open on Sundays?"),
    ("Turn this statement into a question.", "You finished the project yesterday.",
     "Did you finish the project yesterday?"),
]

# (English phrase, (French, Spanish, German))
PHRASES = [
    ("Good morning", ("Bonjour", "Buenos días", "Guten Morgen")),
    ("Thank you very much", ("Merci beaucoup", "Muchas gracias", "Vielen Dank")),
    ("Where is the train station?", ("Où est la gare ?", "¿Dónde está la estación de tren?", "Wo ist der Bahnhof?")),
    ("I am hungry", ("J'ai faim", "Tengo hambre", "Ich habe Hunger")),
    ("How much does this cost?", ("Combien ça coûte ?", "¿Cuánto cuesta esto?", "Wie viel kostet das?")),
    ("See you tomorrow", ("À demain", "Hasta mañana", "Bis morgen")),
    ("The water is cold", ("L'eau est froide", "El agua está fría", "Das Wasser ist kalt")),
    ("I like reading books", ("J'aime lire des livres", "Me gusta leer libros", "Ich lese gern Bücher")),
    ("What time is it?", ("Quelle heure est-il ?", "¿Qué hora es?", "Wie spät ist es?")),
    ("My name is Anna", ("Je m'appelle Anna", "Me llamo Anna", "Ich heiße Anna")),
    ("Happy birthday", ("Joyeux anniversaire", "Feliz cumpleaños", "Alles Gute zum Geburtstag")),
    ("Good night", ("Bonne nuit", "Buenas noches", "Gute Nacht")),
]

# ---------------------------------------------------------------- Chinese building blocks

ZH_NAMES = ["小明", "小红", "李华", "王芳", "张伟", "陈静", "刘洋", "赵磊"]

ZH_CONVERSIONS = [
    ("公里", "米", 1000, 0), ("小时", "分钟", 60, 0), ("公斤", "克", 1000, 0), ("摄氏度", "华氏度", 1.8, 32),
    ("米", "厘米", 100, 0), ("升", "毫升", 1000, 0), ("天", "小时", 24, 0), ("分钟", "秒", 60, 0),
    ("吨", "公斤", 1000, 0), ("公斤", "斤", 2, 0),
]

ZH_CATEGORIES = {
    "水果": ["苹果", "香蕉", "西瓜", "葡萄", "橙子", "草莓", "芒果", "荔枝", "桃子"],
    "蔬菜": ["白菜", "胡萝卜", "西红柿", "黄瓜", "菠菜", "土豆", "茄子", "芹菜"],
    "交通工具": ["自行车", "公交车", "地铁", "火车", "飞机", "轮船", "出租车"],
    "中国的传统节日": ["春节", "元宵节", "清明节", "端午节", "中秋节", "重阳节"],
    "乐器": ["钢琴", "二胡", "古筝", "小提琴", "笛子", "吉他", "琵琶"],
    "运动项目": ["游泳", "乒乓球", "篮球", "足球", "羽毛球", "跑步", "跳绳"],
    "常见的颜色": ["红色", "蓝色", "黄色", "绿色", "紫色", "白色", "黑色"],
}

ZH_SENTENCES = [
    "今天的天气非常晴朗。", "他每天早上都去公园跑步。", "这家书店的咖啡很好喝。", "我们周末打算去爬山。",
    "妈妈在厨房里做饺子。", "图书馆晚上九点关门。", "小猫在沙发上睡着了。", "这座城市的地铁很方便。",
    "她正在学习弹钢琴。", "明天会下一场大雨。",
]

CAPITALS_ZH = [
    ("中国", "北京"), ("日本", "东京"), ("法国", "巴黎"), ("英国", "伦敦"), ("德国", "柏林"), ("俄罗斯", "莫斯科"),
    ("意大利", "罗马"), ("加拿大", "渥太华"), ("澳大利亚", "堪培拉"), ("埃及", "开罗"), ("韩国", "首尔"),
    ("泰国", "曼谷"), ("西班牙", "马德里"), ("巴西", "巴西利亚"), ("印度", "新德里"), ("美国", "华盛顿"),
]

ZH_EXPLAIN = [
    ("天空为什么是蓝色的?", "阳光中包含各种颜色的光。空气分子对波长较短的蓝光散射得更强,所以我们从天空的各个方向都能看到蓝光。"),
    ("什么是光合作用?", "光合作用是植物利用光能,把二氧化碳和水转化为葡萄糖并释放氧气的过程,主要在叶片的叶绿体中进行。"),
    ("为什么会有四季变化?", "地球的自转轴是倾斜的。地球绕太阳公转时,南北半球轮流更直接地接受阳光,于是形成了春夏秋冬。"),
    ("什么是质数?", "质数是大于 1 的整数,并且只能被 1 和它本身整除,例如 2、3、5、7。"),
    ("水的沸点是多少?", "在标准大气压下,水的沸点是 100 摄氏度。"),
    ("请解释什么是通货膨胀。", "通货膨胀是指物价总体持续上涨,同样多的钱能买到的东西变少了。"),
    ("为什么要多喝水?", "水参与人体的消化、体温调节和废物排出。喝水不足会让人疲劳、头痛,注意力下降。"),
    ("什么是人工智能?", "人工智能是让计算机完成通常需要人类智能的任务的技术,比如理解语言、识别图像和做出决策。"),
    ("如何养成早睡的习惯?", "1. 每天固定时间上床。\n2. 睡前一小时不看手机。\n3. 晚上少喝咖啡和浓茶。"),
    ("熊猫主要吃什么?", "竹子。"),
    ("长城有多长?", "根据国家文物局的测量,历代长城的总长度约为两万一千多公里。"),
    ("什么是数据库索引?", "索引是数据库中的一种辅助结构,它把某些列按顺序组织起来,让查询可以快速定位数据,而不用扫描整张表。"),
    ("给一家面包店想一句宣传语。", "每天清晨,新鲜出炉。"),
    ("为什么树叶在秋天变黄?", "秋天日照变短,树木停止制造叶绿素,绿色褪去后,原本就存在的黄色和橙色色素就显现出来了。"),
    ("解释一下什么是递归。", "递归是指一个函数在解决问题时调用自身,每次处理规模更小的同类问题,直到遇到可以直接求解的情况。"),
    ("月亮为什么会有圆缺变化?", "月亮本身不发光,它反射太阳光。随着月亮绕地球运行,我们看到它被照亮的部分不断变化,于是出现了圆缺。"),
    ("什么是成语?请举一个例子。", "成语是汉语中长期使用、结构固定的短语,多为四个字。例如“画蛇添足”,比喻做了多余的事反而坏事。"),
    ("一年有多少天?", "平年有 365 天,闰年有 366 天。"),
    ("为什么运动前要热身?", "热身可以提高肌肉温度和关节灵活性,让身体逐渐进入运动状态,减少拉伤的风险。"),
    ("写一句关于春天的诗句。", "春风拂过柳梢头,细雨轻敲小窗前。"),
    ("什么是 API?", "API 是应用程序编程接口,它规定了一个程序如何向另一个程序请求数据或功能。"),
    ("“学而时习之”是什么意思?", "这句话出自《论语》,意思是学习了知识之后要按时复习和实践。"),
    ("如何保护视力?", "看书和看屏幕时保持适当距离,每隔一段时间远眺休息,保证充足的睡眠,并定期检查视力。"),
    ("地球上最大的海洋是哪个?", "太平洋。"),
]

ZH_SUMMARIES = [
    ("学校决定从下周一开始调整作息时间。早上的第一节课推迟到八点半,午休延长二十分钟,放学时间保持不变。",
     "学校下周起推迟早课并延长午休,放学时间不变。"),
    ("这款手机的电池容量比上一代提高了百分之二十,同时机身更轻。不过新机取消了耳机接口,需要使用转接头。",
     "新手机电池更大、机身更轻,但取消了耳机接口。"),
    ("城市图书馆将在六月搬到新址。搬迁期间,六月一日到十四日暂停借书,但还书可以投进门口的还书箱。",
     "图书馆六月搬迁,期间暂停借书,但可以投箱还书。"),
    ("研究表明,每天步行二十分钟就能降低血压、改善情绪,而且不需要任何专业器材。",
     "每天步行二十分钟对健康有明显好处。"),
    ("明天上午多云,有小雨;中午以后转晴,最高气温二十二度,适合傍晚出门散步。",
     "明天上午有小雨,午后转晴,最高二十二度。"),
    ("绿茶和红茶来自同一种茶树。绿茶在采摘后很快杀青,阻止氧化;红茶则经过充分发酵。",
     "绿茶和红茶同出一树,区别在于是否充分氧化发酵。"),
    ("本次马拉松的起点从公园改到了港口,终点设在老城广场,沿途每五公里设一个补给站。",
     "今年马拉松从港口出发到老城广场,每五公里有补给。"),
    ("公司本季度销售额增长了百分之十二,主要来自新开的网店,线下门店销售基本持平。",
     "网店带动公司本季度销售额增长百分之十二。"),
    ("数据备份只有能够恢复才有意义。很多团队直到出了事故才发现备份已经损坏,所以应该定期做恢复演练。",
     "要定期演练恢复,确保备份真正可用。"),
    ("章鱼有三颗心脏和蓝色的血液,其中两颗心脏负责把血液送到鳃,另一颗负责全身循环。",
     "章鱼有三颗心脏,血液是蓝色的。"),
]

ZH_SENTIMENT = [
    ("菜品很新鲜,服务员也很热情,下次还会再来。", "正面"), ("等了一个小时还没上菜,太失望了。", "负面"),
    ("快递是周二送到的。", "中性"), ("这本书写得很精彩,我一口气读完了。", "正面"), ("耳机用了一周就坏了。", "负面"),
    ("酒店离地铁站大约五百米。", "中性"), ("价格实惠,质量也不错,推荐购买。", "正面"), ("客服态度很差,问题一直没解决。", "负面"),
    ("这部电影大概两个小时。", "中性"), ("风景太美了,拍了好多照片!", "正面"), ("房间有股霉味,隔音也不好。", "负面"),
    ("商店周一不营业。", "中性"), ("老师讲得很清楚,孩子进步很大。", "正面"), ("软件更新以后经常闪退。", "负面"),
]

ZH_EN_PHRASES = [
    ("早上好", "Good morning"), ("谢谢你的帮助", "Thank you for your help"), ("火车站在哪里?", "Where is the train station?"),
    ("我饿了", "I am hungry"), ("这个多少钱?", "How much is this?"), ("明天见", "See you tomorrow"),
    ("今天天气很好", "The weather is nice today"), ("我喜欢看书", "I like reading books"), ("现在几点了?", "What time is it now?"),
    ("祝你生日快乐", "Happy birthday to you"), ("请慢一点说", "Please speak more slowly"), ("我不明白", "I don't understand"),
    ("欢迎来到北京", "Welcome to Beijing"), ("你会说英语吗?", "Do you speak English?"), ("晚安", "Good night"),
    ("请给我一杯水", "Please give me a glass of water"), ("我迷路了", "I am lost"), ("路上小心", "Take care on the way"),
    ("这道菜很好吃", "This dish is delicious"), ("我们一起去吧", "Let's go together"),
]

# ---------------------------------------------------------------- chat: system prompts and tools

SYSTEM_PROMPTS = [
    "You are a helpful assistant.", "You are a concise assistant. Answer briefly and accurately.",
    "You are a friendly tutor who explains things step by step.", "你是一个乐于助人的助手。",
    "You are a careful assistant. If you are not sure, say so.", "你是一位耐心的老师,请用简单的语言回答。",
]

SYSTEM_PROMPTS_TOOLS = [
    "You are a helpful assistant with access to tools. Call a tool when it helps answer the user.",
    "You are an assistant that can call functions. Use them for live data.",
    "你是一个可以调用工具的助手,需要实时信息时请调用工具。",
]


def _fn(name: str, description: str, props: dict, required: list[str]) -> dict:
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": props, "required": required}}


TOOL_SCHEMAS = {
    "get_weather": _fn("get_weather", "Get the current weather for a city.",
                       {"city": {"type": "string", "description": "City name"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
    "convert_currency": _fn("convert_currency", "Convert an amount between two currencies.",
                            {"amount": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}},
                            ["amount", "from", "to"]),
    "search_books": _fn("search_books", "Search the library catalogue.",
                        {"query": {"type": "string"}, "limit": {"type": "integer"}}, ["query"]),
    "calculator": _fn("calculator", "Evaluate an arithmetic expression.",
                      {"expression": {"type": "string"}}, ["expression"]),
}

TOOL_CASES = [
    {"question": "What's the weather like in Oslo right now?", "tool": "get_weather",
     "arguments": {"city": "Oslo", "unit": "celsius"}, "result": {"temperature": 4, "condition": "light snow"},
     "answer": "It is 4 °C in Oslo with light snow. Dress warmly!"},
    {"question": "Is it hot in Cairo today? Use Fahrenheit.", "tool": "get_weather",
     "arguments": {"city": "Cairo", "unit": "fahrenheit"}, "result": {"temperature": 95, "condition": "sunny"},
     "answer": "Yes, it's 95 °F and sunny in Cairo today."},
    {"question": "上海现在天气怎么样?", "tool": "get_weather", "arguments": {"city": "上海", "unit": "celsius"},
     "result": {"temperature": 18, "condition": "多云"}, "answer": "上海现在 18 摄氏度,多云。"},
    {"question": "How much is 50 euros in US dollars?", "tool": "convert_currency",
     "arguments": {"amount": 50, "from": "EUR", "to": "USD"}, "result": {"amount": 54.2, "currency": "USD"},
     "answer": "50 euros is about 54.20 US dollars at the current rate."},
    {"question": "Convert 1200 yen to British pounds, please.", "tool": "convert_currency",
     "arguments": {"amount": 1200, "from": "JPY", "to": "GBP"}, "result": {"amount": 6.3, "currency": "GBP"},
     "answer": "1200 yen is roughly 6.30 British pounds."},
    {"question": "Find me two books about gardening.", "tool": "search_books",
     "arguments": {"query": "gardening", "limit": 2},
     "result": [{"title": "The Small Garden Handbook", "year": 2019}, {"title": "Soil First", "year": 2021}],
     "answer": "I found two: \"The Small Garden Handbook\" (2019) and \"Soil First\" (2021)."},
    {"question": "图书馆有没有关于天文学的书?", "tool": "search_books", "arguments": {"query": "天文学", "limit": 3},
     "result": [{"title": "星空漫步", "year": 2018}], "answer": "有一本:《星空漫步》,2018 年出版。"},
    {"question": "What is 1234 times 5678?", "tool": "calculator", "arguments": {"expression": "1234 * 5678"},
     "result": {"value": 7006652}, "answer": "1234 × 5678 = 7,006,652."},
    {"question": "Can you compute (17 + 25) / 6?", "tool": "calculator",
     "arguments": {"expression": "(17 + 25) / 6"}, "result": {"value": 7}, "answer": "(17 + 25) / 6 = 7."},
    {"question": "帮我算一下 365 乘以 24。", "tool": "calculator", "arguments": {"expression": "365 * 24"},
     "result": {"value": 8760}, "answer": "365 × 24 = 8760,也就是一年大约有 8760 个小时。"},
]

# ---------------------------------------------------------------- pretraining prose, by topic

PROSE_EN = {
    "rivers": [
        "A river begins as rain and melted snow gathering in the hills.",
        "Small streams join one another and grow into a steady current.",
        "Over thousands of years the water carves valleys out of solid rock.",
        "Towns have grown along riverbanks because rivers bring water, food and trade.",
        "Near the sea the current slows and drops the sand and mud it has carried.",
        "That sediment builds wide, flat deltas where farmland is often rich.",
    ],
    "bread": [
        "Bread is one of the oldest prepared foods.",
        "At its simplest it needs only flour, water, salt and time.",
        "Yeast feeds on the sugars in the flour and releases gas that makes the dough rise.",
        "Kneading develops gluten, a stretchy network that traps those bubbles.",
        "A hot oven sets the crumb and browns the crust.",
        "Every region has its own loaves, from flat breads baked on stones to tall tin loaves.",
    ],
    "libraries": [
        "A public library is a quiet promise that knowledge belongs to everyone.",
        "Shelves are arranged by subject so that related books sit side by side.",
        "Librarians help readers find not only books but also maps, records and newspapers.",
        "Many libraries now lend laptops, tools and even seeds for the garden.",
        "Reading rooms fill up in winter with students and retired neighbours alike.",
        "A good library changes with its town while keeping its oldest books safe.",
    ],
    "trains": [
        "The first railways carried coal from mines to the nearest harbor.",
        "Within a few decades passenger trains were linking distant cities.",
        "Standard time zones were adopted partly so that timetables made sense.",
        "Modern high-speed lines run on dedicated tracks with gentle curves.",
        "A night train lets travellers fall asleep in one country and wake up in another.",
        "Rail remains one of the most energy-efficient ways to move people and goods.",
    ],
    "computers": [
        "A computer follows instructions stored in its memory, one small step at a time.",
        "Each step is simple: add two numbers, compare them, or move a value.",
        "Billions of such steps per second add up to games, music and weather forecasts.",
        "Programs are written in languages that people can read and machines can translate.",
        "Bugs appear when the instructions say something different from what the author meant.",
        "Testing a program carefully is how its authors learn what it really does.",
    ],
    "gardens": [
        "A garden teaches patience more than any book.",
        "Seeds sown in spring may take weeks to show their first leaves.",
        "Good soil is alive with worms, fungi and countless tiny creatures.",
        "Watering deeply but rarely encourages roots to grow down toward moisture.",
        "Bees and butterflies visit flowers, carrying pollen from one plant to the next.",
        "By late summer the garden repays the work with fruit, herbs and shade.",
    ],
    "the sea": [
        "The sea covers more than two thirds of the planet's surface.",
        "Its depths are colder and darker than most people imagine.",
        "Tides rise and fall twice a day, pulled mainly by the Moon.",
        "Coral reefs shelter a quarter of all marine species in a small area.",
        "Sailors once navigated by the stars, the Sun and careful arithmetic.",
        "Even today large parts of the ocean floor have never been seen directly.",
    ],
    "mountains": [
        "Mountains form where the plates of the Earth's crust push against each other.",
        "Air grows thinner and colder as a climber gains height.",
        "Above a certain altitude trees can no longer grow, and only grass and moss remain.",
        "Snow that survives the summer slowly turns into glacier ice.",
        "Mountain weather can change within minutes, so hikers carry extra layers.",
        "From the summit, valleys and villages look like a map laid out below.",
    ],
    "markets": [
        "On Saturday mornings the square fills with stalls and voices.",
        "Farmers bring vegetables that were still in the ground the day before.",
        "A baker sells out of rye loaves before nine o'clock.",
        "Children linger at the cheese stall hoping for a free taste.",
        "Prices are written in chalk and change as the day goes on.",
        "By noon the crates are empty and the square slowly goes quiet again.",
    ],
}

PROSE_ZH = {
    "春天": [
        "春天来了,河边的柳树抽出了嫩绿的新芽。", "田野里的油菜花一片金黄,引来许多蜜蜂。",
        "孩子们在草地上放风筝,笑声传得很远。", "一场细雨过后,空气里满是泥土的清香。",
        "农民们忙着翻地播种,期待秋天的好收成。",
    ],
    "城市": [
        "清晨的城市还没有完全醒来,街道上只有零星的行人。", "早点铺冒着热气,豆浆和油条的香味飘满小巷。",
        "上班高峰时,地铁站里人来人往,却井然有序。", "傍晚,公园里跳舞的老人和散步的年轻人越来越多。",
        "夜幕降临,高楼的灯光把整座城市照得通明。",
    ],
    "茶": [
        "中国人喝茶的历史已经有几千年。", "不同的地方有不同的名茶,比如西湖龙井和安溪铁观音。",
        "泡茶时,水温和时间都会影响茶的味道。", "一杯清茶,常常是朋友聊天时最好的陪伴。",
        "茶文化不仅是一种饮食习惯,也是一种生活态度。",
    ],
    "读书": [
        "读书可以让人看到更广阔的世界。", "好的书像一位安静的老师,随时等待我们提问。",
        "很多人喜欢在睡前读几页书,让心情慢慢平静下来。", "图书馆里总是很安静,只有翻书的声音。",
        "读完一本书后写下几句感想,能帮助我们记得更久。",
    ],
}
