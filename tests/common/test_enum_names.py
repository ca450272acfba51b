"""The words written for proto enum values (services/common/enum_names.py) follow the contract."""

from __future__ import annotations

from civic.listening.v1 import alerting_pb2, post_pb2, topics_pb2
from services.common import enum_names


def test_words_are_the_value_names_without_the_prefix() -> None:
    assert enum_names.SENTIMENTS == {"negative": post_pb2.SENTIMENT_LABEL_NEGATIVE,
                                     "neutral": post_pb2.SENTIMENT_LABEL_NEUTRAL,
                                     "positive": post_pb2.SENTIMENT_LABEL_POSITIVE}
    assert enum_names.word(alerting_pb2.MatchOperator, alerting_pb2.MATCH_OPERATOR_NOT_REGEX) == "not_regex"
    assert enum_names.word(topics_pb2.TaggingJobKind, topics_pb2.TAGGING_JOB_KIND_REENRICH) == "reenrich"


def test_every_specified_value_has_a_word_that_leads_back_to_it() -> None:
    for enum in (post_pb2.SentimentLabel, post_pb2.Emotion, alerting_pb2.Severity, alerting_pb2.AlertState,
                 alerting_pb2.RuleKind, topics_pb2.TopicScorer):
        spelled = enum_names.words(enum)
        assert len(spelled) == len(enum.items()) - 1, enum
        assert all(enum_names.word(enum, number) == word for word, number in spelled.items())
        assert all(word and word == word.lower() and not word.endswith("_") for word in spelled)


def test_unspecified_and_unknown_values_have_no_word() -> None:
    assert enum_names.word(post_pb2.Emotion, post_pb2.EMOTION_UNSPECIFIED) == ""
    assert enum_names.word(post_pb2.Emotion, 99) == ""
    assert enum_names.EMOTION_WORDS[post_pb2.EMOTION_SADNESS] == "sadness"
