// ForziumSchema
