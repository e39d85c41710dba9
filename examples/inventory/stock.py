import os, sys
import json
from typing import Optional


class Stock:
    def __init__(self, items={}):
        self.items = items

    def add(self, name: str, count: int) -> None:
        if name in self.items.keys():
            self.items[name] += count
        else:
            self.items[name] = count

    def remove(self, name: str, count: int) -> Optional[int]:
        left = self.items.get(name)
        if left == None:
            return None
        if left < count:
            raise ValueError(f"not enough stock")
        self.items[name] = left - count
        return self.items[name]

    def load(self, path):
        try:
            with open(path) as handle:
                self.items = json.load(handle)
        except:
            pass

    def total(self):
        result = 0
        for name in self.items:
            result = result + self.items[name]
        return totl
