"""The per-language analyzers (english, french, ...) for the local Elasticsearch server.

The server published to Maven Central (the integration-test distribution) lacks the analysis-common
module, so the built-in language analyzers that every real cluster has are missing there. This builds
a small stable-API analysis plugin that registers the same names over the same Lucene analyzers, so the
index template is identical for the local server and for a production cluster (which never gets it).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from pathlib import Path

PLUGIN_NAME = "civic-language-analyzers"

# Analyzer name as Elasticsearch spells it -> the Lucene class its built-in analyzer wraps.
LUCENE_ANALYZERS = {
    "english": "org.apache.lucene.analysis.en.EnglishAnalyzer",
    "french": "org.apache.lucene.analysis.fr.FrenchAnalyzer",
    "spanish": "org.apache.lucene.analysis.es.SpanishAnalyzer",
    "german": "org.apache.lucene.analysis.de.GermanAnalyzer",
    "italian": "org.apache.lucene.analysis.it.ItalianAnalyzer",
    "portuguese": "org.apache.lucene.analysis.pt.PortugueseAnalyzer",
    "arabic": "org.apache.lucene.analysis.ar.ArabicAnalyzer",
    "hindi": "org.apache.lucene.analysis.hi.HindiAnalyzer",
}

_FACTORY_SOURCE = """package civic.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;

@NamedComponent("{name}")
public class {cls} implements AnalyzerFactory {{
    @Override
    public Analyzer create() {{
        return new {lucene}();
    }}
}}
"""


def _class_name(analyzer: str) -> str:
    return analyzer.capitalize() + "AnalyzerFactory"


def has_language_analyzers(home: Path) -> bool:
    """True when the server ships analysis-common or the plugin is already installed."""
    return (home / "modules" / "analysis-common").is_dir() or (home / "plugins" / PLUGIN_NAME).is_dir()


def build_plugin(home: Path, java_home: Path, version: str, work_dir: Path) -> Path:
    """Compiles the factories against the server's own jars and packs the plugin zip."""
    javac = java_home / "bin" / "javac"
    if not javac.exists():
        raise RuntimeError(f"{javac} not found: a JDK (17 or newer, with javac) is needed to build {PLUGIN_NAME}")
    sources = work_dir / "src" / "civic" / "analysis"
    classes = work_dir / "classes"
    sources.mkdir(parents=True)
    classes.mkdir()
    for name, lucene in LUCENE_ANALYZERS.items():
        cls = _class_name(name)
        (sources / f"{cls}.java").write_text(_FACTORY_SOURCE.format(name=name, cls=cls, lucene=lucene))
    result = subprocess.run(
        [str(javac), "--release", "17", "-nowarn", "-cp", str(home / "lib" / "*"), "-d", str(classes),
         *map(str, sorted(sources.glob("*.java")))],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"compiling {PLUGIN_NAME} failed:\n{result.stdout}{result.stderr}")
    jar = work_dir / f"{PLUGIN_NAME}.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, path.relative_to(classes).as_posix())
    descriptor = "\n".join([
        "description=Language analyzers (english, french, ...) for a server without analysis-common",
        "version=1.0.0",
        f"name={PLUGIN_NAME}",
        "java.version=17",
        f"elasticsearch.version={version}",
        "",
    ])
    components = {
        "org.elasticsearch.plugin.analysis.AnalyzerFactory": {
            name: f"civic.analysis.{_class_name(name)}" for name in LUCENE_ANALYZERS
        }
    }
    plugin_zip = work_dir / f"{PLUGIN_NAME}.zip"
    with zipfile.ZipFile(plugin_zip, "w") as archive:
        archive.write(jar, jar.name)
        archive.writestr("stable-plugin-descriptor.properties", descriptor)
        archive.writestr("named_components.json", json.dumps(components))
    return plugin_zip


def install_language_analyzers(home: Path, java_home: Path, version: str) -> None:
    """Adds the plugin to an unpacked server unless it already has the analyzers."""
    if has_language_analyzers(home):
        return
    with tempfile.TemporaryDirectory(prefix="civic-analyzers-") as tmp:
        plugin_zip = build_plugin(home, java_home, version, Path(tmp))
        result = subprocess.run(
            [str(home / "bin" / "elasticsearch-plugin"), "install", "--batch", plugin_zip.as_uri()],
            env={"ES_JAVA_HOME": str(java_home), "ES_PATH_CONF": str(home / "config"), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"installing {PLUGIN_NAME} failed:\n{result.stdout}{result.stderr}")
