"""Singer tap for SurveyMonkey v3: surveys, questions and responses."""
