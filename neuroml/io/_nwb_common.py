"""What neuroml's NWB reader and writer agree on: the fields, names and markers of the format.

The writer stores what NWB has no slot for (a signal's name, channel labels, extra attrs
and coordinates; non-integer unit ids) in places the reader knows to look; both sides
take those places from here, so a written file reads back equal.
"""

#: Optional NWBFile fields copied into ``Recording.meta`` and written back.
_FILE_FIELDS = (
    "lab", "institution", "experimenter", "experiment_description", "session_id",
    "keywords", "notes", "pharmacology", "protocol", "related_publications", "surgery",
    "virus", "stimulus_notes", "data_collection",
)
_SUBJECT_FIELDS = (
    "age", "age__reference", "description", "genotype", "sex", "species", "subject_id",
    "weight", "date_of_birth", "strain",
)
#: ``comments`` of TimeSeries that neuroml wrote start with this, followed by JSON.
_MARKER = "neuroml:"
#: Units-table column holding non-integer unit ids (NWB ids must be integers).
_UNIT_ID_COLUMN = "neuroml_unit_id"
#: Signal attrs the loader derives from the NWB series itself (not copied into the marker).
_DERIVED_ATTRS = {"unit", "description", "conversion", "offset", "resolution", "rate",
                  "starting_time", "timestamps_unit", "nwb_path", "neurodata_type",
                  "timestamps_note", "channel_note"}
