"""A small Python repository (a package with re-exports and an app using it) shared by the code tests."""

FILES = {
    "pkg/__init__.py": "from .shapes import Circle, Square\nfrom .units import *\n",
    "pkg/shapes.py": (
        "import math\n\nfrom .units import to_metres\n\n\nclass Circle:\n    def __init__(self, radius):\n"
        "        self.radius = to_metres(radius)\n\n    def area(self):\n        return math.pi * self.radius ** 2\n\n\n"
        "class Square:\n    def __init__(self, side):\n        self.side = side\n\n    def area(self):\n"
        "        return self.side * self.side\n"
    ),
    "pkg/units.py": "SCALE = 1000\n\n\ndef to_metres(value):\n    return value / SCALE\n",
    "app/main.py": (
        "from pkg import Circle, Square, SCALE\n\n\ndef total_area(shapes):\n    return sum(s.area() for s in shapes)\n"
        "\n\ndef main():\n    shapes = [Circle(2), Square(3)]\n    print(total_area(shapes), SCALE)\n"
    ),
}
