"""Recommending: titles and ids, never a seen item, popularity fallback, files."""

import numpy as np
import pytest

from minivae import MultVAE
from minivae.checkpoint import save_checkpoint
from minivae.data._common import DataError
from minivae.data.catalog import Catalog
from minivae.recommend import Recommender, parse_history_line, read_histories, recommend_file

TITLES = ["Toy Story (1995)", "Heat (1995)", "Matrix, The (1999)", "Alien (1979)",
          "Aliens (1986)", "Fargo (1996)", "1984 (1984)", "Amelie (Fabuleux destin d'Amélie "
          "Poulain, Le) (2001)", "Godfather, The (1972)", "Casablanca (1942)"]
I = 40


@pytest.fixture(scope="module")
def recommender():
    item_ids = np.arange(1, I + 1) * 10
    titles = TITLES + [f"Film number {i} (2000)" for i in range(len(TITLES), I)]
    genres = [("Drama",)] * I
    catalog = Catalog(item_ids, titles, genres)
    rng = np.random.default_rng(0)
    model = MultVAE(I, hidden_dims=(8,), latent_dim=3, seed=2)
    # Random biases make the scores differ from item to item.
    model.params["decoder.1.b"][:] = rng.standard_normal(I)
    counts = rng.permutation(I) * 3
    return Recommender(model, item_ids, counts, catalog)


def test_by_title_never_returns_the_history(recommender):
    history = ["toy story", "The Matrix", "heat (1995)", "ALIEN"]
    rec = recommender.recommend(history, k=I - len(history))
    assert rec.history == [10, 30, 20, 40]
    returned = [it["item_id"] for it in rec.items]
    assert len(returned) == I - 4 and not set(returned) & set(rec.history)
    scores = [it["score"] for it in rec.items]
    assert scores == sorted(scores, reverse=True)
    assert not rec.from_popularity
    assert rec.items[0]["title"] and rec.items[0]["genres"] == ["Drama"]


def test_scores_are_the_models_fold_in_scores(recommender):
    rec = recommender.recommend([10, 60], k=5)
    x = np.zeros((1, I), dtype=np.float32)
    x[0, [0, 5]] = 1
    expected = recommender.model.predict(x)[0]
    for it in rec.items:
        assert it["score"] == pytest.approx(float(expected[it["item_id"] // 10 - 1]))
    assert rec.items[0]["score"] == pytest.approx(float(np.delete(expected, [0, 5]).max()))


def test_unknown_title_suggests_close_ones(recommender):
    with pytest.raises(DataError, match="did you mean.*Godfather"):
        recommender.recommend(["Godfater"])


def test_unknown_ids_are_all_named(recommender):
    with pytest.raises(DataError, match="unknown item ids 7, 12345"):
        recommender.recommend([10, 7, 12345])


def test_empty_history_falls_back_to_popularity(recommender):
    rec = recommender.recommend([], k=5)
    assert rec.from_popularity and rec.history == []
    top = np.argsort(-recommender.item_counts, kind="stable")[:5]
    assert [it["item_id"] for it in rec.items] == list(recommender.item_ids[top])
    assert "most popular" in rec.format()


def test_many_users_match_one_at_a_time(recommender):
    histories = [["Fargo", 100], [], [30, 40, 50]]
    together = recommender.recommend_many(histories, k=4)
    for history, rec in zip(histories, together):
        alone = recommender.recommend(history, k=4)
        assert [it["item_id"] for it in rec.items] == [it["item_id"] for it in alone.items]
        assert rec.from_popularity == alone.from_popularity


def test_history_lines_split_on_semicolons_then_commas():
    assert parse_history_line("Matrix, The; Heat ; 10\n") == ["Matrix, The", "Heat", 10]
    assert parse_history_line("10, 20,30") == [10, 20, 30]
    assert parse_history_line("-") == []


def test_histories_file_skips_comments_and_names_the_bad_line(recommender, tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("# two users and an empty one\nToy Story; Heat\n\n1984 (1984), 40\n-\n")
    histories, lines = read_histories(path)
    assert histories == [["Toy Story", "Heat"], ["1984 (1984)", 40], []]
    assert lines == [2, 4, 5]
    results, _ = recommend_file(recommender, path, k=3)
    assert results[1].history == [70, 40] and results[2].from_popularity
    path.write_text("Heat\nNo Such Film Anywhere\n")
    with pytest.raises(DataError, match=r"users.txt, line 2: no title matches"):
        recommend_file(recommender, path)


def test_from_checkpoint_needs_no_data(recommender, tmp_path):
    path = tmp_path / "best.npz"
    save_checkpoint(path, recommender.model, recommender.item_ids, recommender.item_counts,
                    {"config": {}}, catalog=recommender.catalog)
    again = Recommender.from_checkpoint(path)
    a = again.recommend(["Amelie", "Casablanca"], k=6)
    b = recommender.recommend(["Amelie", "Casablanca"], k=6)
    assert a.items == b.items and a.history == [80, 100]
    assert again.recommend([], k=3).items == recommender.recommend([], k=3).items
