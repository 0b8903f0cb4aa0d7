"""Pool beyond apply_async: map, imap, starmap, callbacks, errors, the
context manager. Run with: procbridge python pool_map.py"""
from multiprocessing import Pool, cpu_count


def square(x):
    return x * x


def power(x, y):
    return x ** y


def fails(x):
    if x == 3:
        raise ValueError('three is not allowed')
    return x


if __name__ == '__main__':
    print('CPUs:', cpu_count() >= 1)
    with Pool(4) as pool:
        print('map:', pool.map(square, range(10)))
        print('map, chunksize 3:', pool.map(square, range(10), chunksize=3))
        print('imap:', list(pool.imap(square, range(5))))
        print('imap_unordered:', sorted(pool.imap_unordered(square, range(5))))
        print('starmap:', pool.starmap(power, [(2, 3), (3, 2), (10, 0)]))
        print('apply:', pool.apply(power, (2, 10)))
        got = []
        r = pool.apply_async(square, (12,), callback=got.append)
        print('apply_async:', r.get(timeout=10), 'callback got', got)
        # Many at once, two functions taking turns, one failing: each
        # result is its own task's.
        results = [pool.apply_async(square if i % 2 else power, (i, 2) if i % 2 == 0 else (i,))
                   for i in range(200)]
        print('apply_async x200:', sum(r.get() for r in results))
        bad = [pool.apply_async(fails, (i,)) for i in range(6)]
        print('apply_async failures:', [r.successful() if r.wait() is None else None for r in bad])
        errors = []
        r = pool.map_async(fails, range(5), error_callback=lambda e: errors.append(str(e)))
        try:
            r.get()
        except ValueError as e:
            print('map_async raised:', e, '| error_callback got', errors)
    print('done')
