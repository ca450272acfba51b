"""Everyday posts about emergencies in Port Alder (fictional), for tenant emergency-mgmt.

Legitimate relief payments appear here too, but never the #ReliefFee hashtag: that belongs to the
planted rumour, so that it can be told apart.
"""

from __future__ import annotations

from phrasebook import PhraseGroup

EMERGENCY: dict[str, PhraseGroup] = {
    "en": {
        "negative": (
            "No alert on my phone about {hazard} until water was already in {area}.",
            "Called the emergency info line three times about {hazard}, nobody picked up.",
            "The shelter at {shelter} ran out of {supply} by {clock}.",
            "Still no power in {area} after {outage}. When is someone coming?",
            "The evacuation route through {area} was blocked and nobody redirected us.",
            "Relief application portal keeps timing out. {consequence}",
            "Sandbags in {area} were gone by {clock} and no more were delivered.",
        ),
        "neutral": (
            "Is the shelter at {shelter} accepting pets?",
            "Reminder: the siren test in {area} is at noon on {weekday}.",
            "Where do I pick up sandbags near {area}?",
            "Does the relief payment application need proof of address?",
            "Road closures in {area} because of {hazard}, plan another route.",
            "What number do I call for storm damage that isn't an emergency?",
            "Boil-water notice for {area}: does it cover {place}?",
        ),
        "positive": (
            "Huge thanks to the volunteers at {shelter}.",
            "Crews restored power in {area} faster than expected.",
            "The text alert about {hazard} came right on time, we left early.",
            "My relief payment arrived today, the process was {smooth}.",
            "Firefighters in {area} were incredible last night.",
            "Clear, calm updates from emergency management all through {hazard}.",
        ),
        "hazard": ("the storm", "the flooding", "the power cut", "the high winds", "the boil-water notice",
                   "the landslide on Cedar Hill"),
        "area": ("Riverside", "North Docks", "Cedar Hill", "Eastfield", "Old Market", "the lower town",
                 "Willow Lane", "Foundry Row"),
        "shelter": ("the Alder Park community centre", "Millbrook high school gym", "the Kingsgate library",
                    "the Harbour Square sports hall"),
        "supply": ("blankets", "cots", "drinking water", "baby formula", "phone chargers"),
        "clock": ("9pm", "midnight", "8am", "noon", "6pm"),
        "outage": ("two days", "36 hours", "since Monday", "a full day"),
        "consequence": ("Tried five times.", "People need that money now.", "Nobody answers emails.",
                        "The paper form is nowhere to be found."),
        "smooth": ("quick", "painless", "simpler than I feared", "clear"),
        "hashtag": ("", "", "", "#PortAlder", "#storm", "#PortAlderAlert", "#StaySafe"),
    },
    "es": {
        "negative": (
            "Ninguna alerta en el móvil sobre {hazard} hasta que el agua ya estaba en {area}.",
            "Llamé tres veces a la línea de emergencias por {hazard} y nadie contestó.",
            "El refugio {shelter} se quedó sin {supply} a las {clock}.",
            "Seguimos sin luz en {area} después de {outage}. ¿Cuándo viene alguien?",
            "La ruta de evacuación por {area} estaba cortada y nadie nos desvió.",
            "La web de solicitud de ayudas no deja de fallar. {consequence}",
        ),
        "neutral": (
            "¿El refugio {shelter} acepta mascotas?",
            "Recordatorio: la prueba de sirenas en {area} es el {weekday} a mediodía.",
            "¿Dónde se recogen sacos de arena cerca de {area}?",
            "¿La solicitud de ayuda necesita justificante de domicilio?",
            "Calles cortadas en {area} por {hazard}, busquen otra ruta.",
        ),
        "positive": (
            "Mil gracias a los voluntarios {shelter}.",
            "Los equipos devolvieron la luz a {area} antes de lo previsto.",
            "La alerta por {hazard} llegó a tiempo y salimos antes.",
            "Hoy cobré la ayuda, el trámite fue {smooth}.",
            "Los bomberos en {area} estuvieron increíbles anoche.",
        ),
        "hazard": ("la tormenta", "las inundaciones", "el apagón", "el viento fuerte", "el aviso de hervir el agua"),
        "area": ("Riverside", "North Docks", "Cedar Hill", "Eastfield", "Old Market", "la parte baja"),
        "shelter": ("del centro cívico de Alder Park", "del gimnasio del instituto Millbrook",
                    "de la biblioteca de Kingsgate"),
        "supply": ("mantas", "catres", "agua potable", "leche de fórmula"),
        "clock": ("9", "12", "8", "6"),
        "outage": ("dos días", "36 horas", "el lunes", "un día entero"),
        "consequence": ("Lo intenté cinco veces.", "La gente necesita ese dinero ya.", "Nadie responde."),
        "smooth": ("rápido", "sencillo", "más fácil de lo que temía"),
        "hashtag": ("", "", "", "#PortAlder", "#tormenta", "#PortAlderAlert"),
    },
    "fr": {
        "negative": (
            "Aucune alerte sur mon téléphone pour {hazard} avant que l'eau n'arrive à {area}.",
            "J'ai appelé trois fois la ligne d'urgence pour {hazard}, personne n'a répondu.",
            "Le refuge {shelter} n'avait plus de {supply} à {clock}.",
            "Toujours pas d'électricité à {area} après {outage}. Quand quelqu'un va venir ?",
            "La route d'évacuation par {area} était bloquée et personne ne nous a redirigés.",
            "Le portail des demandes d'aide plante sans arrêt. {consequence}",
        ),
        "neutral": (
            "Le refuge {shelter} accepte-t-il les animaux ?",
            "Rappel : essai des sirènes à {area} {weekday} à midi.",
            "Où récupérer des sacs de sable près de {area} ?",
            "Faut-il un justificatif de domicile pour la demande d'aide ?",
            "Routes fermées à {area} à cause de {hazard}, prévoyez un autre itinéraire.",
        ),
        "positive": (
            "Un immense merci aux bénévoles {shelter}.",
            "Les équipes ont rétabli le courant à {area} plus vite que prévu.",
            "L'alerte pour {hazard} est arrivée à temps, nous sommes partis tôt.",
            "Mon aide est arrivée aujourd'hui, la démarche a été {smooth}.",
            "Les pompiers de {area} ont été formidables cette nuit.",
        ),
        "hazard": ("la tempête", "les inondations", "la panne de courant", "les vents violents",
                   "l'avis d'ébullition de l'eau"),
        "area": ("Riverside", "North Docks", "Cedar Hill", "Eastfield", "Old Market", "la basse ville"),
        "shelter": ("de la salle communautaire d'Alder Park", "du gymnase du lycée Millbrook",
                    "de la bibliothèque de Kingsgate"),
        "supply": ("couvertures", "lits de camp", "bouteilles d'eau", "lait infantile"),
        "clock": ("21 h", "minuit", "8 h", "midi"),
        "outage": ("deux jours", "36 heures", "lundi", "une journée entière"),
        "consequence": ("Cinq essais.", "Les gens ont besoin de cet argent maintenant.", "Aucune réponse."),
        "smooth": ("rapide", "simple", "plus facile que prévu"),
        "hashtag": ("", "", "", "#PortAlder", "#tempête", "#PortAlderAlert"),
    },
}
