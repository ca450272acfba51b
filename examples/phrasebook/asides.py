"""Personal asides that any post may carry ("Asking for my grandmother."), per language and sentiment.

Real posts mix the point with a bit of the writer's life; without that, posts built from the same
template are so alike that duplicate detection would take ordinary complaints for a campaign.
"""

from __future__ import annotations

from phrasebook import PhraseGroup

ASIDES: dict[str, PhraseGroup] = {
    "en": {
        "negative": (
            "I've lived in {place} for {years} years and it has never been this bad.",
            "My {relative} {hardship} because of this.",
            "I work {shift} at {workplace} and {work_trouble}.",
            "Wrote to them on {weekday}, still no reply.",
            "{count} people on my street say the same.",
            "Already {ordinal} time since {month}.",
        ),
        "neutral": (
            "Asking for my {relative}.",
            "New to {place}, moved here from {hometown} in {month}.",
            "Couldn't find it on the website.",
            "Heard different things from my {relative} and from {forum}.",
            "I work {shift} at {workplace}, so timing matters.",
        ),
        "positive": (
            "My {relative} noticed it too.",
            "Been in {place} {years} years and this is the best I've seen.",
            "I work {shift} at {workplace} and it made a real difference.",
            "Told my {relative} about it and they were impressed.",
        ),
        "years": ("2", "4", "7", "11", "15", "23", "30"),
        "relative": ("mum", "dad", "neighbour", "flatmate", "grandmother", "colleague", "son", "daughter",
                     "partner", "brother", "aunt"),
        "hardship": ("missed a hospital appointment", "nearly lost a job offer", "had to take the day off",
                     "was stuck for hours", "spent money we don't have"),
        "shift": ("nights", "early mornings", "weekends", "split shifts", "part-time"),
        "workplace": ("the hospital", "a bakery in Old Market", "the university library", "the docks",
                      "a call centre", "the care home on Willow Lane", "a school"),
        "work_trouble": ("my manager is losing patience", "I can't afford to be late", "nobody covers for me"),
        "count": ("Five", "Half the", "A dozen", "Most", "Three"),
        "ordinal": ("the fourth", "the sixth", "the second", "the tenth"),
        "month": ("August", "September", "October", "the summer", "spring"),
        "hometown": ("Brackenford", "Saltmarsh", "Lakeview", "Duncliffe"),
        "forum": ("the neighbourhood group", "a video online", "the local radio", "a friend at work"),
    },
    "es": {
        "negative": (
            "Vivo en {place} desde hace {years} años y nunca había sido tan malo.",
            "Mi {relative} {hardship} por esto.",
            "Trabajo {shift} en {workplace} y {work_trouble}.",
            "Escribí el {weekday} y sigo sin respuesta.",
            "Ya es la {ordinal} vez desde {month}.",
        ),
        "neutral": (
            "Pregunto por mi {relative}.",
            "Soy nueva en {place}, llegué de {hometown} en {month}.",
            "No lo encontré en la web.",
            "Trabajo {shift} en {workplace}, así que el horario importa.",
        ),
        "positive": (
            "Mi {relative} también lo notó.",
            "Llevo {years} años en {place} y es lo mejor que he visto.",
            "Se lo conté a mi {relative} y no se lo creía.",
        ),
        "years": ("2", "4", "7", "11", "15", "23"),
        "relative": ("madre", "padre", "vecina", "compañero de piso", "abuela", "hija", "hermano", "tía"),
        "hardship": ("perdió una cita en el hospital", "casi pierde una oferta de trabajo",
                     "tuvo que pedir el día libre", "gastó dinero que no tenemos"),
        "shift": ("de noche", "de madrugada", "los fines de semana", "a media jornada"),
        "workplace": ("el hospital", "una panadería de Old Market", "la biblioteca de la universidad",
                      "el puerto", "una residencia de Willow Lane"),
        "work_trouble": ("no puedo llegar tarde", "mi jefa ya no tiene paciencia", "nadie me cubre"),
        "ordinal": ("cuarta", "sexta", "segunda", "décima"),
        "month": ("agosto", "septiembre", "octubre", "el verano"),
        "hometown": ("Brackenford", "Saltmarsh", "Lakeview"),
    },
    "fr": {
        "negative": (
            "J'habite à {place} depuis {years} ans et ça n'a jamais été aussi mauvais.",
            "Mon {relative} {hardship} à cause de ça.",
            "Je travaille {shift} à {workplace} et {work_trouble}.",
            "J'ai écrit {weekday}, toujours pas de réponse.",
            "C'est déjà la {ordinal} fois depuis {month}.",
        ),
        "neutral": (
            "Je demande pour mon {relative}.",
            "Nouvelle à {place}, arrivée de {hometown} en {month}.",
            "Impossible de trouver l'info sur le site.",
            "Je travaille {shift} à {workplace}, donc l'horaire compte.",
        ),
        "positive": (
            "Mon {relative} l'a remarqué aussi.",
            "À {place} depuis {years} ans et c'est le mieux que j'aie vu.",
            "Je l'ai raconté à mon {relative}, il n'en revenait pas.",
        ),
        "years": ("2", "4", "7", "11", "15", "23"),
        "relative": ("père", "voisin", "colocataire", "grand-père", "fils", "frère", "collègue", "oncle"),
        "hardship": ("a raté un rendez-vous à l'hôpital", "a failli perdre une offre d'emploi",
                     "a dû poser un jour de congé", "a dépensé de l'argent qu'on n'a pas"),
        "shift": ("de nuit", "tôt le matin", "le week-end", "à temps partiel"),
        "workplace": ("l'hôpital", "une boulangerie d'Old Market", "la bibliothèque universitaire",
                      "la capitainerie du port", "la maison de retraite de Willow Lane"),
        "work_trouble": ("je ne peux pas être en retard", "ma cheffe perd patience", "personne ne me remplace"),
        "ordinal": ("quatrième", "sixième", "deuxième", "dixième"),
        "month": ("août", "septembre", "octobre", "l'été"),
        "hometown": ("Brackenford", "Saltmarsh", "Lakeview"),
    },
}
