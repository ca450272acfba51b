"""Fillers every agency's posts share, per language: openers, closers and places in Port Alder.

Port Alder and all its places are fictional.
"""

from __future__ import annotations

from phrasebook import PhraseGroup

_PLACES = (
    "Harbour Square",
    "Millbrook",
    "Alder Park",
    "Riverside",
    "Kingsgate",
    "Old Market",
    "University",
    "Eastfield",
    "Cedar Hill",
    "North Docks",
    "Central Station",
    "Stone Bridge",
    "Willow Lane",
    "Foundry Row",
)

COMMON: dict[str, PhraseGroup] = {
    "en": {
        "place": _PLACES,
        "minutes": ("12", "15", "20", "25", "30", "35", "40", "45", "50"),
        "duration": ("two weeks", "a month", "three days", "since October", "ten days", "all week"),
        "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
        "negative_opener": ("", "", "Ugh.", "Seriously?", "Not again.", "Rant incoming.", "Honestly.",
                            "Unbelievable.", "So tired of this."),
        "neutral_opener": ("", "", "", "Quick question:", "FYI:", "PSA:", "Hi all,", "Genuine question:"),
        "positive_opener": ("", "", "Good news!", "Small win today.", "Pleasantly surprised.",
                            "Credit where it's due:", "Okay, I'll say it:"),
        "negative_closer": ("", "", "Not acceptable for a public service.", "Anyone else dealing with this?",
                            "Fix it, please.", "Absolutely ridiculous.", "Third time this month.",
                            "Nobody tells us anything.", "We deserve better."),
        "neutral_closer": ("", "", "", "Thanks in advance.", "Any tips appreciated.",
                           "Would be good to know.", "Cheers."),
        "positive_closer": ("", "", "Thank you!", "More of this please.", "Made my day.", "Nice work.",
                            "Well done, everyone involved."),
    },
    "es": {
        "place": _PLACES,
        "minutes": ("12", "15", "20", "25", "30", "35", "40", "45", "50"),
        "duration": ("dos semanas", "un mes", "tres días", "octubre", "diez días", "toda la semana"),
        "weekday": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado"),
        "negative_opener": ("", "", "Otra vez.", "¿En serio?", "Qué desastre.", "Estoy harta.",
                            "Increíble.", "No puede ser."),
        "neutral_opener": ("", "", "", "Una pregunta:", "Aviso:", "Hola a todos,", "Para que lo sepáis:"),
        "positive_opener": ("", "", "¡Buenas noticias!", "Hay que decirlo:", "Gratamente sorprendido.",
                            "Un pequeño logro hoy."),
        "negative_closer": ("", "", "Inaceptable para un servicio público.", "¿A alguien más le pasa?",
                            "Arréglenlo, por favor.", "Es una vergüenza.", "Nadie nos informa de nada.",
                            "Merecemos algo mejor."),
        "neutral_closer": ("", "", "", "Gracias de antemano.", "Cualquier consejo se agradece.", "Saludos."),
        "positive_closer": ("", "", "¡Gracias!", "Así sí.", "Me alegró el día.", "Buen trabajo.",
                            "Enhorabuena al equipo."),
    },
    "fr": {
        "place": _PLACES,
        "minutes": ("12", "15", "20", "25", "30", "35", "40", "45", "50"),
        "duration": ("deux semaines", "un mois", "trois jours", "octobre", "dix jours", "toute la semaine"),
        "weekday": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"),
        "negative_opener": ("", "", "Encore.", "Sérieusement ?", "Ras-le-bol.", "Franchement.",
                            "Incroyable.", "C'est pas possible."),
        "neutral_opener": ("", "", "", "Petite question :", "Pour info :", "Bonjour à tous,", "À savoir :"),
        "positive_opener": ("", "", "Bonne nouvelle !", "Il faut le dire :", "Agréablement surprise.",
                            "Petite victoire aujourd'hui."),
        "negative_closer": ("", "", "Inacceptable pour un service public.", "Quelqu'un d'autre dans ce cas ?",
                            "Réglez ça, s'il vous plaît.", "C'est honteux.", "Personne ne nous informe.",
                            "On mérite mieux."),
        "neutral_closer": ("", "", "", "Merci d'avance.", "Tout conseil est bienvenu.", "Bonne journée."),
        "positive_closer": ("", "", "Merci !", "Continuez comme ça.", "Ça fait plaisir.", "Bravo.",
                            "Bravo à toute l'équipe."),
    },
}
