-- edm: the course's five items, 100 of each (SQLite). Existing rows are kept.
INSERT OR IGNORE INTO inventory (id, name, price, quantity) VALUES
    (1, 'cloth', 50000, 100),
    (2, 'cap', 30000, 100),
    (3, 'sunglasses', 25000, 100),
    (4, 'necklace', 150000, 100),
    (5, 'earring', 15000, 100);
