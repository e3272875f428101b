/** Names of the five input fields in a user's records (a user's export may call error_type `player_error_code`). */
export interface FieldNames {
  viewId: string;
  propertyId: string;
  videoTitle: string;
  errorType: string;
  ts: string;
}

/** The documented input format's field names. */
export const DEFAULT_FIELD_NAMES: FieldNames = {
  viewId: 'view_id',
  propertyId: 'property_id',
  videoTitle: 'video_title',
  errorType: 'error_type',
  ts: 'ts',
};
